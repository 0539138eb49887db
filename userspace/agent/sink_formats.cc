#include "agent/sink_formats.h"

#include "shipping/influx_format.h"
#include "shipping/native_format.h"
#include "shipping/otlp_format.h"
#include "shipping/remote_write_format.h"

namespace tally::agent {

Result<shipping::GroupMatcher> compile_groups(const std::vector<GroupConfig>& groups) {
  std::vector<shipping::GroupRule> rules;
  for (const GroupConfig& g : groups) {
    shipping::GroupRule r;
    r.name = g.name;
    r.field = g.field == "cmdline"  ? shipping::GroupRule::Field::cmdline
              : g.field == "cgroup" ? shipping::GroupRule::Field::cgroup
                                    : shipping::GroupRule::Field::comm;
    r.pattern = g.pattern;
    rules.push_back(std::move(r));
  }
  return shipping::GroupMatcher::compile(std::move(rules));
}

shipping::RollupOptions rollup_options(const SinkConfig& sink) {
  shipping::RollupOptions o;
  o.top = sink.processes == "top";
  o.top_n = sink.top_n;
  o.min_cpu_pct = sink.min_cpu_pct;
  o.max_groups = sink.max_groups;
  return o;
}

Result<std::unique_ptr<shipping::SinkFormat>> make_sink_format(
    const SinkConfig& sink, const SinkIdentity& id, const std::vector<GroupConfig>& groups) {
  if (sink.format == "native") {
    return std::unique_ptr<shipping::SinkFormat>(
        std::make_unique<shipping::NativeFormat>(id.agent_id, id.host));
  }
  auto matcher = compile_groups(groups);
  if (!matcher.ok()) return matcher.error().context(fmt::format("sink {}", sink.name));
  if (sink.format == "influx") {
    shipping::InfluxOptions o;
    o.precision = shipping::parse_precision(sink.precision).value_or(shipping::TimePrecision::ns);
    o.cmdline = sink.cmdline;
    o.rollup = rollup_options(sink);
    return std::unique_ptr<shipping::SinkFormat>(
        std::make_unique<shipping::InfluxFormat>(o, std::move(*matcher)));
  }
  if (sink.format == "otlp") {
    shipping::OtlpOptions o;
    o.host_id = id.host_id;
    o.scope_version = id.version;
    o.cmdline = sink.cmdline;
    o.rollup = rollup_options(sink);
    return std::unique_ptr<shipping::SinkFormat>(
        std::make_unique<shipping::OtlpFormat>(o, std::move(*matcher)));
  }
  if (sink.format == "remote_write") {
    shipping::RemoteWriteOptions o;
    o.rollup = rollup_options(sink);
    o.state_path = id.state_path;
    o.sink = sink.name;
    return std::unique_ptr<shipping::SinkFormat>(
        std::make_unique<shipping::RemoteWriteFormat>(o, std::move(*matcher)));
  }
  return Error::format(
      "sink {}: unknown format \"{}\" (accepted: native, influx, otlp, remote_write)", sink.name,
      sink.format);
}

std::string sink_request_url(const SinkConfig& sink) {
  if (sink.format != "influx") return sink.url;
  return shipping::influx_write_url(
      sink.url, sink.database,
      shipping::parse_precision(sink.precision).value_or(shipping::TimePrecision::ns));
}

std::filesystem::path sink_state_path(const std::string& outbox_path, const std::string& sink) {
  return outbox_path + ".sink-" + sink + ".counters";
}

}  // namespace tally::agent
