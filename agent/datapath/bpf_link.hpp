// RAII owner of a libbpf `struct bpf_link`. Destroying it closes the link fd;
// for a pinned cgroup link that does NOT detach the program (the pin keeps a
// reference), which is exactly what lets the data plane outlive the agent.
#pragma once

#include <bpf/libbpf.h>

#include <utility>

namespace weft::datapath {

class BpfLink {
 public:
  BpfLink() = default;
  explicit BpfLink(bpf_link* link) : link_(link) {}
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;
  BpfLink(BpfLink&& o) noexcept : link_(std::exchange(o.link_, nullptr)) {}
  BpfLink& operator=(BpfLink&& o) noexcept {
    if (this != &o) reset(std::exchange(o.link_, nullptr));
    return *this;
  }
  ~BpfLink() { reset(); }

  bpf_link* get() const { return link_; }
  int fd() const { return link_ ? bpf_link__fd(link_) : -1; }
  explicit operator bool() const { return link_ != nullptr; }
  void reset(bpf_link* link = nullptr) {
    if (link_) bpf_link__destroy(link_);
    link_ = link;
  }

 private:
  bpf_link* link_ = nullptr;
};

}  // namespace weft::datapath
