// Container, pod and unit attribution from cgroup paths, as runtimes and the
// kubelet write them on cgroup v1 and v2 (paths copied from /proc/PID/cgroup
// of real hosts; ids shortened nowhere, since the parser checks lengths).
#include "accounting/container_ref.h"

#include <ostream>

#include <gtest/gtest.h>

namespace tally::accounting {
namespace {

constexpr const char* kId = "4a3c1f6e9b2d8a7c5e0f1b3d6c9a2e4f7b1d3c5e8a0f2b4d6c8e1a3b5d7f9c0e";
constexpr const char* kPodDashes = "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
constexpr const char* kPodUnderscores = "8f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b";

struct Case {
  const char* name;
  std::string path;
  ContainerRef want;
};

std::string id() { return kId; }

// gtest prints a parameter that has no printer as its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.path; }

class ContainerFromCgroup : public testing::TestWithParam<Case> {};

TEST_P(ContainerFromCgroup, NamesTheContainerThePathBelongsTo) {
  const Case& c = GetParam();
  const ContainerRef got = container_from_cgroup(c.path);
  EXPECT_EQ(got.runtime, c.want.runtime) << c.path;
  EXPECT_EQ(got.id, c.want.id) << c.path;
  EXPECT_EQ(got.pod_uid, c.want.pod_uid) << c.path;
  EXPECT_EQ(got.qos, c.want.qos) << c.path;
}

const std::string kBurstableSystemd = std::string("/kubepods.slice/kubepods-burstable.slice/") +
                                      "kubepods-burstable-pod" + kPodUnderscores + ".slice/";

INSTANTIATE_TEST_SUITE_P(
    Layouts, ContainerFromCgroup,
    testing::Values(
        // docker, cgroupfs driver (cgroup v1 and v2 alike)
        Case{"DockerCgroupfs", "/docker/" + id(), {"docker", id(), "", ""}},
        // docker, systemd driver
        Case{"DockerSystemd", "/system.slice/docker-" + id() + ".scope", {"docker", id(), "", ""}},
        // a process in a sub-cgroup of the container (systemd run inside it)
        Case{"DockerNested",
             "/system.slice/docker-" + id() + ".scope/system.slice/nginx.service",
             {"docker", id(), "", ""}},
        // containerd under Kubernetes, systemd driver, burstable pod
        Case{"ContainerdSystemdBurstable",
             kBurstableSystemd + "cri-containerd-" + id() + ".scope",
             {"containerd", id(), kPodDashes, "burstable"}},
        // guaranteed pods sit directly under kubepods.slice
        Case{"ContainerdSystemdGuaranteed",
             std::string("/kubepods.slice/kubepods-pod") + kPodUnderscores +
                 ".slice/cri-containerd-" + id() + ".scope",
             {"containerd", id(), kPodDashes, "guaranteed"}},
        // cgroupfs driver: the runtime is not in the path
        Case{"KubepodsCgroupfsBestEffort",
             std::string("/kubepods/besteffort/pod") + kPodDashes + "/" + id(),
             {"cri", id(), kPodDashes, "besteffort"}},
        // the pod's own cgroup (the pause process's parent, or a pod-level read)
        Case{"PodSliceOnly", kBurstableSystemd, {"", "", kPodDashes, "burstable"}},
        // CRI-O
        Case{"Crio",
             kBurstableSystemd + "crio-" + id() + ".scope",
             {"crio", id(), kPodDashes, "burstable"}},
        // CRI-O's conmon monitors the container but is not in it
        Case{"CrioConmon",
             kBurstableSystemd + "crio-conmon-" + id() + ".scope",
             {"", "", kPodDashes, "burstable"}},
        // podman, systemd driver, rootful and rootless
        Case{"PodmanRootful", "/machine.slice/libpod-" + id() + ".scope", {"podman", id(), "", ""}},
        Case{"PodmanRootless",
             "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id() + ".scope",
             {"podman", id(), "", ""}},
        // podman, cgroupfs driver
        Case{"PodmanCgroupfs", "/libpod_parent/libpod-" + id(), {"podman", id(), "", ""}},
        // systemd services and user sessions
        Case{"SystemdService", "/system.slice/nginx.service", {"systemd", "nginx.service", "", ""}},
        Case{"UserService",
             "/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service",
             {"systemd", "foo.service", "", ""}},
        Case{"UserSession",
             "/user.slice/user-1000.slice/session-3.scope",
             {"systemd", "user-1000.slice", "", ""}},
        // unknown layouts: nothing is guessed
        Case{"Root", "/", {}}, Case{"Empty", "", {}},
        Case{"UnknownLayout", "/process_api/4eebc09fcd1774168a521b1672f313f7", {}},
        Case{"ShortBareIdIsNotAnId", "/docker/4a3c1f6e9b2d", {}},
        Case{"UpperCaseHexIsNotAnId", "/docker/" + std::string(64, 'A'), {}},
        Case{"ScopeWithBadId", "/system.slice/docker-xyz.scope", {}},
        Case{"DockerPrefixWithoutScope", "/system.slice/docker-" + id(), {}},
        Case{"BadPodUid",
             "/kubepods/burstable/podnot-a-uid/" + id(),
             {"cri", id(), "", "burstable"}}),
    [](const testing::TestParamInfo<Case>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace tally::accounting
