/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* weft_meta (include/weft/bpf_abi.h): the ABI version of the node's pins.
 * Declared by every object so that each adopts the one pin and carries
 * struct weft_meta in its BTF; no program reads it. The agent stamps and
 * pins it once the node's maps have this layout (agent/datapath/abi.hpp). */
#ifndef WEFT_BPF_LIB_META_H
#define WEFT_BPF_LIB_META_H

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_meta);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_meta SEC(".maps");

#endif /* WEFT_BPF_LIB_META_H */
