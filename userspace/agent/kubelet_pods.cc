#include "agent/kubelet_pods.h"

#include <curl/curl.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/token_file.h"
#include "shipping/url_redaction.h"
#include "tally/log.h"
#include "tally/time_util.h"
#include "tally/version.h"

namespace tally::agent {

namespace {

using Json = nlohmann::json;

const std::string* string_at(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

// "containerd://4a3c..." → "4a3c...": the id as the cgroup path has it.
std::string bare_container_id(std::string_view id) {
  const auto scheme = id.find("://");
  return std::string(scheme == std::string_view::npos ? id : id.substr(scheme + 3));
}

void add_containers(const Json& statuses, PodEntry& pod) {
  if (!statuses.is_array()) return;
  for (const Json& c : statuses) {
    const std::string* name = string_at(c, "name");
    const std::string* id = string_at(c, "containerID");
    if (name && id && !id->empty()) pod.containers[bare_container_id(*id)] = *name;
  }
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Body {
  std::string text;
  bool too_long = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  const size_t n = size * count;
  if (body->text.size() + n > kMaxPodListBytes) {
    body->too_long = true;
    return 0;  // ends the transfer with CURLE_WRITE_ERROR
  }
  body->text.append(data, n);
  return n;
}

const std::string kUserAgent = "tallyd/" + std::string(kVersion);

}  // namespace

Result<PodIndex> parse_pod_list(std::string_view json) {
  const Json doc = Json::parse(json, nullptr, false);
  if (doc.is_discarded()) return Error("not JSON");
  if (!doc.is_object()) return Error("not a JSON object (a PodList is one)");
  const auto items = doc.find("items");
  if (items == doc.end() || !items->is_array()) return Error("no \"items\" array (not a PodList)");
  PodIndex out;
  for (const Json& item : *items) {
    const Json* metadata =
        item.is_object() && item.contains("metadata") ? &item["metadata"] : nullptr;
    const std::string* uid = metadata ? string_at(*metadata, "uid") : nullptr;
    if (!uid || uid->empty()) continue;
    PodEntry pod;
    if (const std::string* name = string_at(*metadata, "name")) pod.name = *name;
    if (const std::string* ns = string_at(*metadata, "namespace")) pod.pod_namespace = *ns;
    if (const auto status = item.find("status"); status != item.end() && status->is_object()) {
      for (const char* key :
           {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
        if (const auto s = status->find(key); s != status->end()) add_containers(*s, pod);
      }
    }
    out[*uid] = std::move(pod);
  }
  return out;
}

KubeletPods::KubeletPods(KubeletOptions options)
    : options_(std::move(options)), pods_(std::make_shared<const PodIndex>()) {}

KubeletPods::~KubeletPods() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KubeletPods::start() {
  thread_ = std::thread([this] { run(); });
}

namespace {

// Names one process or cgroup line from the pod list; false: its pod is
// not in the list.
template <typename Line>
bool name_pod(Line& line, const PodIndex& pods) {
  const auto pod = pods.find(line.pod_uid);
  if (pod == pods.end()) return false;
  line.pod = pod->second.name;
  line.pod_namespace = pod->second.pod_namespace;
  if (const auto c = pod->second.containers.find(line.container_id);
      c != pod->second.containers.end()) {
    line.container = c->second;
  }
  return true;
}

}  // namespace

void KubeletPods::annotate(samples::IntervalSamples& interval) {
  annotate(interval.processes);
  std::shared_ptr<const PodIndex> pods;
  {
    std::lock_guard lock(mutex_);
    pods = pods_;
  }
  // The processes asked for a refetch already where a pod was missing.
  for (samples::CgroupSample& c : interval.cgroups) {
    if (!c.pod_uid.empty()) name_pod(c, *pods);
  }
}

void KubeletPods::annotate(std::vector<samples::ProcessSample>& processes) {
  std::shared_ptr<const PodIndex> pods;
  {
    std::lock_guard lock(mutex_);
    pods = pods_;
  }
  std::uint64_t misses = 0;
  for (samples::ProcessSample& p : processes) {
    if (p.pod_uid.empty()) continue;
    if (!name_pod(p, *pods)) ++misses;
  }
  if (misses == 0) return;
  {
    std::lock_guard lock(mutex_);
    stats_.misses += misses;
    miss_ = true;
  }
  wake_.notify_all();
}

KubeletPods::Stats KubeletPods::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.pods = pods_->size();
  return s;
}

Result<PodIndex> KubeletPods::fetch() const {
  const std::string where = shipping::redact_url(options_.url);
  auto token = read_token(options_.token_file);
  if (!token) return token.error().context(fmt::format("GET {}", where));
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Error::format("GET {}: curl_easy_init failed", where);
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  if (!token->empty()) {
    headers.reset(curl_slist_append(nullptr, ("Authorization: Bearer " + *token).c_str()));
    if (!headers) return Error::format("GET {}: out of memory building headers", where);
  }
  Body body;
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<std::int64_t>(options_.timeout.count(), 5000)));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, options_.tls_verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, options_.tls_verify ? 2L : 0L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent.c_str());
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the kubelet offers it
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  const CURLcode rc = curl_easy_perform(c);
  if (body.too_long) {
    return Error::format("GET {}: answer longer than {} MiB", where, kMaxPodListBytes >> 20);
  }
  if (rc != CURLE_OK) {
    return Error::format("GET {}: {}", where,
                         error_buffer[0] ? error_buffer : curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::string shown = body.text.substr(0, 200);
    std::replace_if(
        shown.begin(), shown.end(), [](char ch) { return ch < 0x20 || ch == 0x7f; }, ' ');
    return Error::format("GET {}: HTTP {}{}{}{}", where, status,
                         status == 401 || status == 403
                             ? " (the service account needs get on nodes/proxy or nodes/pods)"
                             : "",
                         shown.empty() ? "" : ": ", shown);
  }
  auto pods = parse_pod_list(body.text);
  if (!pods) return pods.error().context(fmt::format("GET {}: the answer", where));
  return pods;
}

void KubeletPods::run() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mutex_);
  Clock::time_point next = Clock::now();  // first fetch at once
  Clock::time_point last_fetch = Clock::time_point::min();
  while (!stop_) {
    // A miss brings the next fetch forward to miss_gap after the last one,
    // never sooner: a process of a pod the kubelet does not know (yet) must
    // not turn into a fetch per interval.
    const Clock::time_point due =
        miss_ && stats_.failing_streak == 0 && last_fetch != Clock::time_point::min()
            ? std::min(next, last_fetch + options_.miss_gap)
            : next;
    if (Clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    miss_ = false;
    lock.unlock();
    Result<PodIndex> fetched = Error("not fetched");
    try {
      fetched = fetch();
    } catch (const std::exception& e) {  // bad_alloc: this thread must not end tallyd
      fetched = Error::format("GET {}: {}", shipping::redact_url(options_.url), e.what());
    }
    lock.lock();
    last_fetch = Clock::now();
    ++stats_.fetches;
    if (fetched.ok()) {
      pods_ = std::make_shared<const PodIndex>(std::move(fetched).value());
      if (stats_.failing_streak > 0) log::info("kubelet pods: fetching works again");
      stats_.failing_streak = 0;
      stats_.last_error.clear();
      stats_.last_success_ns = realtime_ns();
      next = last_fetch + options_.refresh;
    } else {
      ++stats_.failures;
      ++stats_.failing_streak;
      const std::string message = fetched.error().message();
      if (message != stats_.last_error) {
        log::warning("kubelet pods: {} (samples keep their pod ids; retrying)", message);
      }
      stats_.last_error = message;
      // 10 s, 20 s, ... up to the refresh interval; a miss does not hurry it.
      const auto backoff = std::min<std::chrono::milliseconds>(
          options_.refresh,
          options_.miss_gap * (1LL << std::min<std::uint64_t>(stats_.failing_streak - 1, 10)));
      next = last_fetch + backoff;
    }
  }
}

}  // namespace tally::agent
