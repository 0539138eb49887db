// Which container, pod or systemd unit a cgroup path belongs to, read from
// the path alone: runtimes name the cgroups they create after the container
// (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
// libpod-<id>.scope, /docker/<id>) and the kubelet names pod cgroups after
// the pod's UID and QoS class (kubepods-burstable-pod<uid>.slice,
// /kubepods/besteffort/pod<uid>). No runtime socket or API is asked: this
// works the same in a container, on a host and on a copy of the data.
//
// Pod names, namespaces and container names are not in the path; the
// kubelet's /pods API adds them (agent/kubelet_pods.h).
#pragma once

#include <string>
#include <string_view>

namespace tally::accounting {

struct ContainerRef {
  // "docker", "containerd", "crio", "podman", "cri" (a kubepods cgroup whose
  // runtime the cgroupfs driver does not name), "systemd" (a unit), or empty.
  std::string runtime;
  // The runtime's container id (64 hex digits as the runtime writes it), or
  // for "systemd" the unit name ("nginx.service"). Empty when unknown.
  std::string id;
  std::string pod_uid;  // the pod's UID with dashes, for kubepods paths
  std::string qos;      // "guaranteed", "burstable" or "besteffort", for kubepods paths

  bool empty() const { return id.empty() && pod_uid.empty(); }
  bool operator==(const ContainerRef&) const = default;
};

// The container the path names, searched from the deepest component up (a
// process in a container's sub-cgroup belongs to that container). An
// unknown layout gives an empty ref: the path itself is still reported.
ContainerRef container_from_cgroup(std::string_view path);

}  // namespace tally::accounting
