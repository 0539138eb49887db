// Pod names from a kubelet: a recorded PodList (the Kubernetes API's
// schema, as a kubelet's /pods serves it) over real TLS on loopback, with a
// bearer token, from a stand-in kubelet (tests/support/kubelet_stub.py).
#include "agent/kubelet_pods.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "subprocess.h"
#include "temp_dir.h"

namespace tally::agent {
namespace {

using namespace std::chrono_literals;

constexpr const char* kWebPod = "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
constexpr const char* kNginx = "4a3c1f6e9b2d8a7c5e0f1b3d6c9a2e4f7b1d3c5e8a0f2b4d6c8e1a3b5d7f9c0e";
const std::string kNewPod = "9a9a9a9a-1234-4567-89ab-cdefcdefcdef";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

TEST(PodList, MapsEachPodUidToItsNamesAndEachContainerIdToItsName) {
  auto pods = parse_pod_list(read_file(KUBELET_PODS_JSON));
  ASSERT_TRUE(pods.ok()) << pods.error().message();
  ASSERT_EQ(pods->size(), 3u);
  const PodEntry& web = pods->at(kWebPod);
  EXPECT_EQ(web.name, "web-7d4b9c6f5-x2k8p");
  EXPECT_EQ(web.pod_namespace, "shop");
  EXPECT_EQ(web.containers.at(kNginx), "nginx");                  // "containerd://" taken off
  EXPECT_EQ(web.containers.at(std::string(64, '1')), "migrate");  // init containers too
  EXPECT_EQ(web.containers.size(), 3u);
  // A container still being created has no id yet: the pod is known, it is not.
  EXPECT_TRUE(pods->at("5e5e5e5e-1111-4222-8333-944444444444").containers.empty());
}

TEST(PodList, RefusesWhatIsNotAPodListSayingWhat) {
  EXPECT_EQ(parse_pod_list("<html>").error().message(), "not JSON");
  EXPECT_EQ(parse_pod_list("[]").error().message(), "not a JSON object (a PodList is one)");
  EXPECT_EQ(parse_pod_list(R"({"kind":"Status"})").error().message(),
            "no \"items\" array (not a PodList)");
  // Odd members are skipped, not fatal.
  auto odd = parse_pod_list(
      R"({"items":[1,{"metadata":{"uid":7}},{"metadata":{"uid":"u","name":["x"]},"status":{"containerStatuses":[{"name":1}]}}]})");
  ASSERT_TRUE(odd.ok());
  ASSERT_EQ(odd->size(), 1u);
  EXPECT_EQ(odd->at("u").name, "");
}

class Kubelet : public testing::Test {
 protected:
  void SetUp() override {
    // A self-signed certificate for 127.0.0.1: the trust tallyd is given.
    // An EC key is made at once; RSA takes CPU that other tests want.
    const std::string cert = dir_ / "kubelet.crt", key = dir_ / "kubelet.key";
    test::RunResult r =
        test::run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert},
                  30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_file(dir_ / "token", "s3cret-token\n");
    write_file(dir_ / "pods.json", read_file(KUBELET_PODS_JSON));
    stub_ = std::make_unique<test::Subprocess>(std::vector<std::string>{
        "/usr/bin/python3", KUBELET_STUB_PATH, "--cert", cert, "--key", key, "--token-file",
        dir_ / "token", "--pods", dir_ / "pods.json"});
    auto line =
        stub_->wait_for_line([](const std::string& l) { return l.rfind("port ", 0) == 0; }, 20s);
    ASSERT_TRUE(line.has_value()) << stub_->stderr_text();
    options_.url = "https://127.0.0.1:" + line->substr(5) + "/pods";
    options_.token_file = dir_ / "token";
    options_.ca_file = cert;
    options_.refresh = 1h;
    options_.miss_gap = 200ms;
    options_.timeout = 5s;
  }

  std::size_t requests(int code) const {
    const std::string tail = " " + std::to_string(code);
    std::size_t n = 0;
    for (const auto& l : stub_->lines()) {
      if (l.rfind("GET ", 0) == 0 && l.size() > tail.size() &&
          l.compare(l.size() - tail.size(), tail.size(), tail) == 0)
        ++n;
    }
    return n;
  }

  static bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 100; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return done();
  }

  static samples::ProcessSample in_pod(const std::string& uid, const std::string& container_id) {
    samples::ProcessSample p;
    p.pod_uid = uid;
    p.container_id = container_id;
    return p;
  }

  test::TempDir dir_;
  std::unique_ptr<test::Subprocess> stub_;
  KubeletOptions options_;
};

TEST_F(Kubelet, NamesPodsAndContainersAndFetchesAgainForAPodItDoesNotKnow) {
  KubeletPods pods(options_);
  pods.start();
  ASSERT_TRUE(eventually([&] { return pods.stats().pods == 3; })) << pods.stats().last_error;

  std::vector<samples::ProcessSample> ps{in_pod(kWebPod, kNginx), in_pod(kWebPod, "beef"),
                                         samples::ProcessSample{}};
  pods.annotate(ps);
  EXPECT_EQ(ps[0].pod, "web-7d4b9c6f5-x2k8p");
  EXPECT_EQ(ps[0].pod_namespace, "shop");
  EXPECT_EQ(ps[0].container, "nginx");
  EXPECT_EQ(ps[1].pod, "web-7d4b9c6f5-x2k8p");  // the pod is known, this container is not
  EXPECT_EQ(ps[1].container, "");
  EXPECT_EQ(ps[2].pod, "");  // in no pod
  EXPECT_EQ(requests(200), 1u);

  // A pod that started after the last fetch: the first sample goes out with
  // its ids, and the list is fetched again soon (not after the hour).
  std::string list = read_file(dir_ / "pods.json");
  list.replace(list.find("0c0f5a7e-91d2-4c1b-8e3a-5f6d7e8f9a0b"), 36, kNewPod);
  write_file(dir_ / "pods.json", list);
  std::vector<samples::ProcessSample> fresh{in_pod(kNewPod, "")};
  pods.annotate(fresh);
  EXPECT_EQ(fresh[0].pod, "");
  EXPECT_EQ(pods.stats().misses, 1u);
  ASSERT_TRUE(eventually([&] { return requests(200) == 2; }));
  ASSERT_TRUE(eventually([&] {
    std::vector<samples::ProcessSample> again{in_pod(kNewPod, "")};
    pods.annotate(again);
    return again[0].pod == "coredns-5d78c9869d-7qv5z";
  }));
  // Misses of a pod the kubelet does not have either do not fetch every
  // interval: at most one fetch per miss_gap.
  const std::size_t before = requests(200);
  for (int i = 0; i < 20; ++i) {
    std::vector<samples::ProcessSample> ghost{in_pod("00000000-0000-4000-8000-000000000000", "")};
    pods.annotate(ghost);
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(requests(200) - before, 3u);
}

TEST_F(Kubelet, FailuresAreCountedAndKeepTheLastListNeverFatal) {
  KubeletPods pods(options_);
  pods.start();
  ASSERT_TRUE(eventually([&] { return pods.stats().pods == 3; }));

  // The kubelet answers 500: counted, said, and the names stay.
  write_file(dir_ / "pods.json", "HTTP 500");
  std::vector<samples::ProcessSample> unknown{in_pod(kNewPod, "")};
  pods.annotate(unknown);
  ASSERT_TRUE(eventually([&] { return pods.stats().failures >= 1; }));
  auto s = pods.stats();
  EXPECT_NE(s.last_error.find("HTTP 500"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.pods, 3u);
  std::vector<samples::ProcessSample> ps{in_pod(kWebPod, kNginx)};
  pods.annotate(ps);
  EXPECT_EQ(ps[0].container, "nginx");
}

TEST_F(Kubelet, AWrongTokenOrCertificateIsAnErrorThatSaysSo) {
  write_file(dir_ / "wrong", "not-the-token");
  KubeletOptions wrong_token = options_;
  wrong_token.token_file = dir_ / "wrong";
  KubeletPods refused(wrong_token);
  refused.start();
  ASSERT_TRUE(eventually([&] { return refused.stats().failures >= 1; }));
  EXPECT_NE(refused.stats().last_error.find("HTTP 401 (the service account needs get on "
                                            "nodes/proxy or nodes/pods)"),
            std::string::npos)
      << refused.stats().last_error;

  // Without the kubelet's certificate as trust, TLS verification fails.
  KubeletOptions untrusted = options_;
  untrusted.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  KubeletPods unverified(untrusted);
  unverified.start();
  ASSERT_TRUE(eventually([&] { return unverified.stats().failures >= 1; }));
  EXPECT_EQ(unverified.stats().pods, 0u);
  EXPECT_NE(unverified.stats().last_error.find("GET https://127.0.0.1:"), std::string::npos);

  KubeletOptions no_token_file = options_;
  no_token_file.token_file = dir_ / "missing";
  KubeletPods no_token(no_token_file);
  no_token.start();
  ASSERT_TRUE(eventually([&] { return no_token.stats().failures >= 1; }));
  EXPECT_NE(no_token.stats().last_error.find("missing"), std::string::npos);
}

}  // namespace
}  // namespace tally::agent
