#include "accounting/container_ref.h"

#include <algorithm>
#include <vector>

namespace tally::accounting {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_hex_id(std::string_view s, std::size_t min_len) {
  if (s.size() < min_len || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A pod UID as the kubelet writes it: 36 characters, dashes (cgroupfs) or
// underscores (systemd, where '-' separates slice levels) at 8, 13, 18, 23.
bool pod_uid_from(std::string_view s, std::string& out) {
  if (s.size() != 36) return false;
  std::string uid(s);
  for (std::size_t i = 0; i < uid.size(); ++i) {
    const bool sep = i == 8 || i == 13 || i == 18 || i == 23;
    char& c = uid[i];
    if (sep) {
      if (c != '-' && c != '_') return false;
      c = '-';
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  out = std::move(uid);
  return true;
}

struct ScopePrefix {
  std::string_view prefix;
  std::string_view runtime;
};
// Longer prefixes first: "crio-conmon-" must not read as crio's container.
constexpr ScopePrefix kConmon[] = {{"crio-conmon-", "crio"}, {"libpod-conmon-", "podman"}};
constexpr ScopePrefix kScopes[] = {
    {"cri-containerd-", "containerd"},
    {"docker-", "docker"},
    {"crio-", "crio"},
    {"libpod-", "podman"},
};

// A container's own cgroup: "<runtime>-<id>.scope" (systemd driver) or
// "libpod-<id>" (podman's cgroupfs driver).
bool container_scope(std::string_view c, ContainerRef& out) {
  std::string_view name = c;
  if (ends_with(name, ".scope")) name.remove_suffix(6);
  for (const auto& conmon : kConmon) {
    if (starts_with(name, conmon.prefix)) return false;  // the runtime's monitor, not the container
  }
  for (const auto& s : kScopes) {
    if (!starts_with(name, s.prefix)) continue;
    const std::string_view id = name.substr(s.prefix.size());
    if (!is_hex_id(id, 12)) return false;
    if (name.size() == c.size() && s.runtime != "podman") return false;  // only libpod omits .scope
    out.runtime = s.runtime;
    out.id = id;
    return true;
  }
  return false;
}

}  // namespace

ContainerRef container_from_cgroup(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }

  ContainerRef ref;
  bool kubepods = false;
  for (const std::string_view c : parts) {
    if (c == "kubepods" || starts_with(c, "kubepods.") || starts_with(c, "kubepods-")) {
      kubepods = true;
    }
  }

  // The deepest container scope or bare id: a process in a sub-cgroup of a
  // container (systemd inside it, say) belongs to that container.
  for (std::size_t i = parts.size(); i-- > 0 && ref.id.empty();) {
    const std::string_view c = parts[i];
    if (container_scope(c, ref)) break;
    if (is_hex_id(c, 64) && i > 0) {
      // cgroupfs drivers: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>.
      const std::string_view parent = parts[i - 1];
      ref.id = c;
      if (parent == "docker") {
        ref.runtime = "docker";
      } else if (kubepods) {
        ref.runtime = "cri";
      }
    }
  }

  if (kubepods) {
    for (const std::string_view c : parts) {
      std::string_view name = c;
      if (ends_with(name, ".slice")) name.remove_suffix(6);
      if (name == "besteffort" || ends_with(name, "-besteffort")) ref.qos = "besteffort";
      if (name == "burstable" || ends_with(name, "-burstable")) ref.qos = "burstable";
      const auto at = name.rfind("pod");
      if (at != std::string_view::npos && (at == 0 || name[at - 1] == '-')) {
        pod_uid_from(name.substr(at + 3), ref.pod_uid);
      }
    }
    if (!ref.pod_uid.empty() && ref.qos.empty()) ref.qos = "guaranteed";
  }

  if (ref.id.empty() && ref.pod_uid.empty()) {
    // Not a container: the systemd unit, the deepest service, else the
    // user's slice (a login session's processes).
    std::string_view unit;
    for (const std::string_view c : parts) {
      if (ends_with(c, ".service")) unit = c;
    }
    if (unit.empty()) {
      for (const std::string_view c : parts) {
        if (starts_with(c, "user-") && ends_with(c, ".slice")) unit = c;
      }
    }
    if (!unit.empty()) {
      ref.runtime = "systemd";
      ref.id = unit;
    }
  }
  return ref;
}

}  // namespace tally::accounting
