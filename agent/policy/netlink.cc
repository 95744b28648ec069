#include "agent/policy/netlink.hpp"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "weft/unique_fd.hpp"

namespace weft::policy {

namespace {

class Request {
 public:
  Request(uint16_t type, uint16_t flags, const void* body, size_t len) {
    buf_.resize(NLMSG_SPACE(len));
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_len = NLMSG_LENGTH(len);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_seq = 1;
    std::memcpy(NLMSG_DATA(h), body, len);
  }
  void AddAttr(uint16_t type, const void* data, size_t len) {
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    size_t off = NLMSG_ALIGN(h->nlmsg_len);
    buf_.resize(off + RTA_SPACE(len));
    h = reinterpret_cast<nlmsghdr*>(buf_.data());
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + off);
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(len);
    std::memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = off + RTA_SPACE(len);
  }
  const std::vector<char>& bytes() const { return buf_; }

 private:
  std::vector<char> buf_;
};

// Sends `req` and calls `fn` for every answer message until DONE (dump) or
// the single answer. A netlink error is returned as a Status with its errno.
Status Transact(const Request& req, const std::string& what, const std::function<Status(const nlmsghdr*)>& fn) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return Status::Errno(what + ": netlink socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::sendto(fd.get(), req.bytes().data(), req.bytes().size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0)
    return Status::Errno(what + ": netlink send", errno);
  const auto* rh = reinterpret_cast<const nlmsghdr*>(req.bytes().data());
  bool dump = rh->nlmsg_flags & NLM_F_DUMP;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(what + ": netlink receive", errno);
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return Status::Ok();
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return Status::Ok();  // ACK
        return Status::Errno(what, -e->error);
      }
      WEFT_RETURN_IF_ERROR(fn(h));
      if (!dump) return Status::Ok();
    }
  }
}

void ParseAttrs(const rtattr* a, int len, const rtattr* out[], int max) {
  for (int i = 0; i <= max; ++i) out[i] = nullptr;
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type <= max) out[a->rta_type] = a;
}

}  // namespace

Result<Interface> InterfaceByIndex(uint32_t ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = static_cast<int>(ifindex);
  Request req(RTM_GETLINK, 0, &ifi, sizeof(ifi));
  Interface out;
  out.ifindex = ifindex;
  Status st = Transact(req, "RTM_GETLINK ifindex " + std::to_string(ifindex), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return Status::Ok();
    const auto* m = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    const rtattr* tb[IFLA_MAX + 1];
    ParseAttrs(IFLA_RTA(m), static_cast<int>(IFLA_PAYLOAD(h)), tb, IFLA_MAX);
    if (tb[IFLA_IFNAME]) out.name = static_cast<const char*>(RTA_DATA(tb[IFLA_IFNAME]));
    if (tb[IFLA_LINKINFO]) {
      const rtattr* li[IFLA_INFO_MAX + 1];
      ParseAttrs(static_cast<const rtattr*>(RTA_DATA(tb[IFLA_LINKINFO])),
                 static_cast<int>(RTA_PAYLOAD(tb[IFLA_LINKINFO])), li, IFLA_INFO_MAX);
      if (li[IFLA_INFO_KIND]) out.kind = static_cast<const char*>(RTA_DATA(li[IFLA_INFO_KIND]));
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Result<Interface> RouteToInterface(const IpAddr& addr) {
  rtmsg rt{};
  bool v4 = addr.is_v4();
  rt.rtm_family = v4 ? AF_INET : AF_INET6;
  rt.rtm_dst_len = v4 ? 32 : 128;
  Request req(RTM_GETROUTE, 0, &rt, sizeof(rt));
  if (v4) {
    uint32_t be = addr.v4_be();
    req.AddAttr(RTA_DST, &be, 4);
  } else {
    req.AddAttr(RTA_DST, addr.bytes().data(), 16);
  }
  const std::string what = "route lookup of " + addr.ToString();
  uint32_t oif = 0;
  bool gateway = false;
  Status st = Transact(req, what, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return Status::Ok();
    const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
    const rtattr* tb[RTA_MAX + 1];
    ParseAttrs(RTM_RTA(m), static_cast<int>(RTM_PAYLOAD(h)), tb, RTA_MAX);
    if (tb[RTA_OIF]) std::memcpy(&oif, RTA_DATA(tb[RTA_OIF]), sizeof(oif));
    gateway = tb[RTA_GATEWAY] != nullptr || tb[RTA_VIA] != nullptr;
    if (m->rtm_type != RTN_UNICAST)
      return Status::Error(what + ": route type " + std::to_string(m->rtm_type) + " is not a unicast route");
    return Status::Ok();
  });
  if (!st.ok()) return st;
  if (oif == 0) return Status::Error(what + ": no output interface");
  if (gateway) return Status::Error(what + ": the route goes through a gateway (not a local workload's interface)");
  auto i = InterfaceByIndex(oif);
  if (!i.ok()) return i.status().Wrap(what);
  return i;
}

Result<int> CountTcFilters(uint32_t ifindex, bool egress) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = static_cast<int>(ifindex);
  t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, egress ? TC_H_MIN_EGRESS : TC_H_MIN_INGRESS);
  Request req(RTM_GETTFILTER, NLM_F_DUMP, &t, sizeof(t));
  int n = 0;
  Status st = Transact(req, "list tc filters of ifindex " + std::to_string(ifindex),
                       [&](const nlmsghdr* h) {
                         if (h->nlmsg_type == RTM_NEWTFILTER) ++n;
                         return Status::Ok();
                       });
  if (!st.ok()) {
    if (st.err() == EINVAL || st.err() == ENOENT) return 0;  // no clsact qdisc
    return st;
  }
  return n;
}

}  // namespace weft::policy
