// WEFT_ASAN is defined in a build with AddressSanitizer (scripts/test.sh's
// build-test: clang, -fsanitize=address), by gcc's or clang's own test.
// Code whose measure differs under ASan (its allocator keeps freed memory in
// a quarantine; RSS includes its shadow) asks this, once.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
