#include "agent/datapath/loader.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "agent/datapath/abi.hpp"
#include "weft/sock_lb.skel.h"
#include "weft/sys.hpp"

namespace fs = std::filesystem;

namespace weft::datapath {

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;
bool g_libbpf_verbose = false;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !g_libbpf_verbose) return 0;
  char buf[2048];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  if (n <= 0) return n;
  std::string line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", line); break;
    case LIBBPF_INFO: spdlog::info("libbpf: {}", line); break;
    case LIBBPF_DEBUG: spdlog::debug("libbpf: {}", line); break;
  }
  return n;
}


Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Error("create directory " + path + ": " + ec.message(), ec.value());
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Mounts bpffs at /sys/fs/bpf if the pin root lives there and it is missing,
// secures the pin root, then insists that the pin root is on a bpf filesystem.
Status EnsurePinRoot(const std::string& pin_root, const std::string& dir) {
  if (pin_root == "/sys/fs/bpf" || pin_root.rfind("/sys/fs/bpf/", 0) == 0)
    WEFT_RETURN_IF_ERROR(sys::EnsureBpffs("/sys/fs/bpf"));
  WEFT_RETURN_IF_ERROR(SecurePinRoot(pin_root, true));
  WEFT_RETURN_IF_ERROR(MakeDirs(dir));
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return Status::Errno("statfs " + dir, errno);
  if (static_cast<long>(st.f_type) != kBpfFsMagic)
    return Status::Error("pin directory " + dir + " is not on a bpf filesystem (pin root " + pin_root + ")");
  return Status::Ok();
}

std::string Owner(uid_t uid) {
  std::string s = "uid " + std::to_string(uid);
  if (const passwd* pw = ::getpwuid(uid)) s += " (" + std::string(pw->pw_name) + ")";
  return s;
}

std::string Mode(mode_t m) {
  char b[8];
  std::snprintf(b, sizeof(b), "%04o", static_cast<unsigned>(m & 07777));
  return b;
}

template <typename Info>
Status InfoByFd(int fd, Info* info, const std::string& what) {
  *info = Info{};
  __u32 len = sizeof(*info);
  if (bpf_obj_get_info_by_fd(fd, info, &len) != 0) return Status::Errno("get info of " + what, errno);
  return Status::Ok();
}

// Capacity asked for a map on the command line, if any (typed by skeleton map).
std::optional<uint32_t> RequestedCapacity(sock_lb& skel, const bpf_map* map, const Capacities& c) {
  if (map == skel.maps.weft_services || map == skel.maps.weft_svc_stats) return c.max_services;
  if (map == skel.maps.weft_backends || map == skel.maps.weft_be_stats) return c.max_backends;
  if (map == skel.maps.weft_slots) return c.max_slots;
  return std::nullopt;
}

}  // namespace

Status PrepareMapsForPins(bpf_object* obj, const std::function<std::optional<uint32_t>(const bpf_map*)>& requested,
                          const std::string& hint) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const std::string name = bpf_map__name(map);
    auto want = requested(map);
    if (want) {
      if (*want == 0) return Status::Error("capacity of map " + name + ": must be > 0");
      if (int err = bpf_map__set_max_entries(map, *want); err != 0)
        return Status::Errno("set capacity of map " + name + " to " + std::to_string(*want), -err);
    }
    const char* pin = bpf_map__pin_path(map);
    if (!pin || !Exists(pin)) continue;
    UniqueFd fd(bpf_obj_get(pin));
    if (!fd) return Status::Errno("open pinned map " + std::string(pin), errno);
    bpf_map_info info{};
    WEFT_RETURN_IF_ERROR(InfoByFd(fd.get(), &info, "pinned map " + std::string(pin)));
    auto mismatch = [&](const char* field, uint64_t pinned, uint64_t ours) {
      return Status::Error("adopt map " + name + " pinned at " + pin + ": " + field + " is " +
                           std::to_string(pinned) + " in the pin, " + std::to_string(ours) + " in this agent" +
                           hint);
    };
    if (info.type != bpf_map__type(map)) return mismatch("map type", info.type, bpf_map__type(map));
    if (info.key_size != bpf_map__key_size(map)) return mismatch("key size", info.key_size, bpf_map__key_size(map));
    if (info.value_size != bpf_map__value_size(map))
      return mismatch("value size", info.value_size, bpf_map__value_size(map));
    if (info.map_flags != bpf_map__map_flags(map)) return mismatch("map flags", info.map_flags, bpf_map__map_flags(map));
    if (info.max_entries != bpf_map__max_entries(map)) {
      if (want) return mismatch("capacity (max_entries)", info.max_entries, *want);
      // No capacity asked for: the pinned one wins (adoption never resizes).
      if (int err = bpf_map__set_max_entries(map, info.max_entries); err != 0)
        return Status::Errno("set capacity of map " + name + " to the pinned " + std::to_string(info.max_entries), -err);
    }
  }
  return Status::Ok();
}

Status SecurePinRoot(const std::string& pin_root, bool create) {
  if (pin_root.empty() || pin_root[0] != '/')
    return Status::Error("pin root '" + pin_root + "': must be an absolute path");
  std::string root = pin_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const std::string parent = fs::path(root).parent_path().string();
  const std::string fix =
      "; check what it holds, then remove it (or make it root's: chown root:root and chmod 0700), or choose another "
      "--pin-root";
  struct stat pst {};
  if (::lstat(parent.c_str(), &pst) != 0) return Status::Errno("stat " + parent + " (parent of the pin root)", errno);
  if (!S_ISDIR(pst.st_mode))
    return Status::Error("parent " + parent + " of the pin root is not a directory (a symlink?): refusing it");
  if (pst.st_uid != 0 || ((pst.st_mode & (S_IWGRP | S_IWOTH)) && !(pst.st_mode & S_ISVTX)))
    return Status::Error("parent " + parent + " of the pin root " + root + " is owned by " + Owner(pst.st_uid) +
                         " with mode " + Mode(pst.st_mode) +
                         ": someone other than root could rename the pin root and hide the pins from `weft-agent "
                         "cleanup`; choose a --pin-root whose parent is root's and not writable by others (or sticky)");
  if (create && ::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Errno("create pin root " + root, errno);
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR)
      return Status::Error("pin root " + root + " is not a directory (a symlink?): refusing it" + fix, errno);
    return Status::Errno("open pin root " + root, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::Errno("stat pin root " + root, errno);
  if (st.st_uid != 0)
    return Status::Error("pin root " + root + " is owned by " + Owner(st.st_uid) + " with mode " + Mode(st.st_mode) +
                             ", not by root: refusing it (its owner could rename it, so that `weft-agent cleanup` "
                             "finds nothing while the programs stay attached, or plant entries in it)" + fix,
                         EPERM);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Status::Error("pin root " + root + " (owned by " + Owner(st.st_uid) + ") has mode " + Mode(st.st_mode) +
                             ": writable by group or others, who could have planted entries in it: refusing it" + fix,
                         EPERM);
  if (create && (st.st_mode & 07777) != 0700) {
    // Root's and not writable by others: an older agent's (it created 0755).
    if (::fchmod(fd.get(), 0700) != 0) return Status::Errno("chmod 0700 pin root " + root, errno);
    spdlog::warn("pin root {} had mode {} (owned by root): narrowed to 0700", root, Mode(st.st_mode));
  }
  return Status::Ok();
}

namespace {

// sock_lb's maps, with the capacities asked for on the command line.
Status PrepareMaps(sock_lb& skel, const Capacities& caps, const std::string& node) {
  return PrepareMapsForPins(
      skel.obj, [&](const bpf_map* m) { return RequestedCapacity(skel, m, caps); },
      ": run `weft-agent cleanup --node " + node + "` first (this drops the node's load-balancing state)");
}

// Path of the cgroup with kernel id `id` under the cgroup2 mount, for error
// messages ("" if not found).
std::string CgroupPathById(uint64_t id) {
  if (id == 0) return "";
  auto mount = sys::Cgroup2Mount();
  if (!mount.ok()) return "";
  std::error_code ec;
  auto check = [&](const std::string& p) {
    auto cid = CgroupId(p);
    return cid.ok() && *cid == id;
  };
  if (check(*mount)) return *mount;
  for (auto it = fs::recursive_directory_iterator(*mount, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && check(it->path().string())) return it->path().string();
  }
  return "";
}

// Checks that a pinned link is a cgroup link of the program's attach type on
// the configured cgroup.
Status CheckLinkInfo(const bpf_link_info& info, const std::string& pin, bpf_program* prog, const std::string& cg,
                     uint64_t cgroup_id, const std::string& node) {
  const std::string link = "pinned link " + pin + " (id " + std::to_string(info.id) + ")";
  if (info.type != BPF_LINK_TYPE_CGROUP)
    return Status::Error(link + " is not a cgroup link (type " + std::to_string(info.type) + ")");
  if (info.cgroup.cgroup_id != cgroup_id) {
    std::string where = CgroupPathById(info.cgroup.cgroup_id);
    std::string attached = info.cgroup.cgroup_id == 0 ? "a cgroup that no longer exists"
                           : where.empty() ? "cgroup id " + std::to_string(info.cgroup.cgroup_id)
                                           : where + " (cgroup id " + std::to_string(info.cgroup.cgroup_id) + ")";
    return Status::Error(link + " is attached to " + attached + ", but --cgroup is " + cg + " (cgroup id " +
                         std::to_string(cgroup_id) + "): use the node's cgroup or run `weft-agent cleanup --node " +
                         node + "`");
  }
  if (info.cgroup.attach_type != static_cast<__u32>(bpf_program__expected_attach_type(prog)))
    return Status::Error(link + " has attach type " + std::to_string(info.cgroup.attach_type) + ", program " +
                         bpf_program__name(prog) + " needs " +
                         std::to_string(bpf_program__expected_attach_type(prog)));
  return Status::Ok();
}

Result<UniqueFd> OpenCgroup(const std::string& cg) {
  UniqueFd fd(::open(cg.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::Errno("open cgroup " + cg, errno);
  struct statfs st {};
  if (::fstatfs(fd.get(), &st) != 0) return Status::Errno("statfs cgroup " + cg, errno);
  if (st.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */)
    return Status::Error("cgroup " + cg + " is not a cgroup v2 directory");
  return fd;
}

}  // namespace

void InstallLibbpfLogging(bool verbose) {
  g_libbpf_verbose = verbose;
  libbpf_set_print(LibbpfPrint);
}

Result<uint64_t> CgroupId(const std::string& path) {
  // cgroupfs exports 8-byte file handles holding the kernfs id, which is the
  // id the kernel reports in bpf_link_info.cgroup.cgroup_id.
  struct {
    file_handle fh;
    unsigned char bytes[sizeof(uint64_t)];
  } h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, path.c_str(), &h.fh, &mount_id, 0) == 0 &&
      h.fh.handle_bytes == sizeof(uint64_t)) {
    uint64_t id;
    std::memcpy(&id, h.fh.f_handle, sizeof(id));
    return id;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Errno("stat cgroup " + path, errno);
  return static_cast<uint64_t>(st.st_ino);
}

Result<UniqueFd> LockNode(const NodePaths& paths) {
  UniqueFd fd(::open(paths.node_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::Errno("open node pin directory " + paths.node_dir, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Error("lock " + paths.node_dir + ": another weft-agent is running for this node", EWOULDBLOCK);
    return Status::Errno("lock " + paths.node_dir, errno);
  }
  return fd;
}

Datapath::Datapath(LoaderOptions opts) : opts_(std::move(opts)), paths_(opts_.pin_root, opts_.node) {}

Datapath::~Datapath() {
  owned_links_.clear();  // close link fds; the pins keep the programs attached
  if (skel_) sock_lb__destroy(skel_);
}

Result<std::unique_ptr<Datapath>> Datapath::Load(const LoaderOptions& opts) {
  if (opts.node.empty() || opts.node.find('/') != std::string::npos || opts.node == "." || opts.node == "..")
    return Status::Error("node name '" + opts.node + "': must be non-empty and contain no '/'");
  std::unique_ptr<Datapath> dp(new Datapath(opts));
  const NodePaths& p = dp->paths_;
  WEFT_RETURN_IF_ERROR(EnsurePinRoot(opts.pin_root, p.maps_dir));
  WEFT_RETURN_IF_ERROR(MakeDirs(p.links_dir));
  auto lock = LockNode(p);
  if (!lock.ok()) return lock.status();
  dp->lock_ = std::move(*lock);

  bpf_object_open_opts oo{};
  oo.sz = sizeof(oo);
  oo.pin_root_path = p.maps_dir.c_str();
  dp->skel_ = sock_lb__open_opts(&oo);
  if (!dp->skel_) return Status::Errno("open BPF object sock_lb", errno);

  // The ABI version of the pins first (abi.hpp): a newer or unknown one is
  // refused before anything is adopted.
  auto abi = AbiMigration::Prepare(
      dp->skel_->obj, p.maps_dir,
      ": run `weft-agent cleanup --node " + opts.node + "` first (this drops the node's load-balancing state)");
  if (!abi.ok()) return abi.status().Wrap("adopt the pins of node " + opts.node);
  dp->abi_ = std::move(*abi);
  // Which maps are adopted is decided before load (after load all are pinned).
  std::vector<bool> pinned_before;
  bpf_map* map;
  bpf_object__for_each_map(map, dp->skel_->obj) {
    const char* pin = bpf_map__pin_path(map);
    pinned_before.push_back(pin && Exists(pin));
  }
  WEFT_RETURN_IF_ERROR(PrepareMaps(*dp->skel_, opts.capacities, opts.node));

  if (int err = sock_lb__load(dp->skel_); err != 0)
    return Status::Errno("load BPF object sock_lb (maps pinned under " + p.maps_dir + ")", -err);
  WEFT_RETURN_IF_ERROR(dp->abi_->Fill());

  size_t i = 0;
  bpf_object__for_each_map(map, dp->skel_->obj) {
    MapSummary s;
    s.name = bpf_map__name(map);
    s.adopted = pinned_before[i++];
    bpf_map_info info{};
    WEFT_RETURN_IF_ERROR(InfoByFd(bpf_map__fd(map), &info, "map " + s.name));
    s.id = info.id;
    s.max_entries = info.max_entries;
    const char* pin = bpf_map__pin_path(map);
    spdlog::info("map {} (id {}, capacity {}): {} {}", s.name, s.id, s.max_entries,
                 s.adopted ? "adopted pin" : pin ? "created and pinned at" : "created,",
                 pin ? pin : "pinned once the node is stamped");
    dp->maps_.push_back(std::move(s));
  }
  WEFT_RETURN_IF_ERROR(dp->CheckPinnedLinks());
  return dp;
}

Status Datapath::CheckPinnedLinks() const {
  auto cgroup_fd = OpenCgroup(opts_.cgroup);
  if (!cgroup_fd.ok()) return cgroup_fd.status();
  auto id = CgroupId(opts_.cgroup);
  if (!id.ok()) return id.status();
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    const std::string pin = paths_.links_dir + "/" + bpf_program__name(prog);
    if (!Exists(pin)) continue;
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) return Status::Errno("open pinned link " + pin, errno);
    bpf_link_info info{};
    WEFT_RETURN_IF_ERROR(InfoByFd(fd.get(), &info, "pinned link " + pin));
    WEFT_RETURN_IF_ERROR(CheckLinkInfo(info, pin, prog, opts_.cgroup, *id, opts_.node));
  }
  return Status::Ok();
}

Datapath::Effective Datapath::capacities() const {
  return Effective{bpf_map__max_entries(skel_->maps.weft_services), bpf_map__max_entries(skel_->maps.weft_svc_stats),
                   bpf_map__max_entries(skel_->maps.weft_backends), bpf_map__max_entries(skel_->maps.weft_be_stats),
                   bpf_map__max_entries(skel_->maps.weft_slots)};
}

Status Datapath::Attach() {
  const std::string& cg = opts_.cgroup;
  auto cgroup_fd = OpenCgroup(cg);
  if (!cgroup_fd.ok()) return cgroup_fd.status();
  auto id = CgroupId(cg);
  if (!id.ok()) return id.status();

  links_.clear();
  owned_links_.clear();
  std::vector<std::string> names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    names.push_back(bpf_program__name(prog));
    WEFT_RETURN_IF_ERROR(AttachOne(prog, cgroup_fd->get(), *id));
  }

  // Links pinned by an older build for programs this build no longer has:
  // detach them, or a stale program would keep running next to ours.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths_.links_dir, ec)) {
    std::string name = e.path().filename().string();
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    UniqueFd fd(bpf_obj_get(e.path().c_str()));
    if (fd && bpf_link_detach(fd.get()) != 0 && errno != EINVAL && errno != ENOLINK)
      spdlog::warn("detach stale link {}: {}", e.path().string(), std::strerror(errno));
    if (::unlink(e.path().c_str()) != 0) return Status::Errno("unpin stale link " + e.path().string(), errno);
    spdlog::info("removed stale link {} (no such program in this build)", e.path().string());
  }
  // The links run the new programs: maps of a new ABI layout replace the old pins.
  return abi_->Finish();
}

Status Datapath::AttachOne(bpf_program* prog, int cgroup_fd, uint64_t cgroup_id) {
  const std::string name = bpf_program__name(prog);
  const std::string pin = paths_.links_dir + "/" + name;
  const std::string& cg = opts_.cgroup;
  LinkSummary s;
  s.prog = name;
  BpfLink link;

  if (Exists(pin)) {
    link.reset(bpf_link__open(pin.c_str()));
    if (!link) return Status::Errno("open pinned link " + pin, errno);
    bpf_link_info info{};
    WEFT_RETURN_IF_ERROR(InfoByFd(link.fd(), &info, "pinned link " + pin));
    WEFT_RETURN_IF_ERROR(CheckLinkInfo(info, pin, prog, cg, cgroup_id, opts_.node));
    uint32_t old_prog = info.prog_id;
    if (int err = bpf_link__update_program(link.get(), prog); err != 0)
      return Status::Errno("replace program of pinned link " + pin + " (id " + std::to_string(info.id) + ") with " + name, -err);
    s.adopted = true;
    s.link_id = info.id;
    WEFT_RETURN_IF_ERROR(InfoByFd(link.fd(), &info, "link " + pin));
    s.prog_id = info.prog_id;
    spdlog::info("link {} (id {}): adopted, program replaced (prog id {} -> {})", pin, s.link_id, old_prog, s.prog_id);
  } else {
    link.reset(bpf_program__attach_cgroup(prog, cgroup_fd));
    if (!link) return Status::Errno("attach " + name + " to " + cg, errno);
    if (int err = bpf_link__pin(link.get(), pin.c_str()); err != 0)
      return Status::Errno("pin link of " + name + " at " + pin, -err);
    bpf_link_info info{};
    WEFT_RETURN_IF_ERROR(InfoByFd(link.fd(), &info, "link " + pin));
    s.link_id = info.id;
    s.prog_id = info.prog_id;
    spdlog::info("link {} (id {}): attached {} to {} and pinned", pin, s.link_id, name, cg);
  }
  links_.push_back(s);
  owned_links_.push_back(std::move(link));
  return Status::Ok();
}

Result<CleanupReport> Cleanup(const std::string& pin_root, const std::string& node) {
  if (node.empty() || node.find('/') != std::string::npos || node == "." || node == "..")
    return Status::Error("node name '" + node + "': must be non-empty and contain no '/'");
  NodePaths p(pin_root, node);
  CleanupReport report;
  if (!Exists(pin_root)) return report;
  WEFT_RETURN_IF_ERROR(SecurePinRoot(pin_root, false).Wrap("cleanup node " + node));
  if (!Exists(p.node_dir)) return report;
  auto lock = LockNode(p);
  if (!lock.ok()) return lock.status().Wrap("cleanup node " + node);

  std::error_code ec;
  // Links first: detach explicitly (BPF_LINK_DETACH), so the programs leave
  // the cgroup now even if some process still holds a link fd; then unpin.
  if (Exists(p.links_dir)) {
    for (const auto& e : fs::directory_iterator(p.links_dir, ec)) {
      const std::string path = e.path().string();
      UniqueFd fd(bpf_obj_get(path.c_str()));
      if (fd && bpf_link_detach(fd.get()) != 0 && errno != EINVAL && errno != ENOLINK)
        return Status::Errno("detach link " + path, errno);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unpin link " + path, errno);
      report.removed.push_back(path);
    }
    if (ec) return Status::Error("list " + p.links_dir + ": " + ec.message(), ec.value());
  }
  if (Exists(p.maps_dir)) {
    for (const auto& e : fs::directory_iterator(p.maps_dir, ec)) {
      const std::string path = e.path().string();
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unpin map " + path, errno);
      report.removed.push_back(path);
    }
    if (ec) return Status::Error("list " + p.maps_dir + ": " + ec.message(), ec.value());
  }
  for (const std::string& dir : {p.links_dir, p.maps_dir, p.node_dir}) {
    if (::rmdir(dir.c_str()) == 0) {
      report.removed.push_back(dir);
    } else if (errno != ENOENT) {
      return Status::Errno("remove pin directory " + dir, errno);
    }
  }
  return report;
}

}  // namespace weft::datapath
