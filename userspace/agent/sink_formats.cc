#include "agent/sink_formats.h"

#include "shipping/influx_format.h"
#include "shipping/native_format.h"
#include "shipping/otlp_format.h"

namespace tally::agent {

Result<std::unique_ptr<shipping::SinkFormat>> make_sink_format(const SinkConfig& sink,
                                                               const SinkIdentity& id) {
  if (sink.format == "native") {
    return std::unique_ptr<shipping::SinkFormat>(
        std::make_unique<shipping::NativeFormat>(id.agent_id, id.host));
  }
  if (sink.format == "influx") {
    shipping::InfluxOptions o;
    o.precision = shipping::parse_precision(sink.precision).value_or(shipping::TimePrecision::ns);
    o.cmdline = sink.cmdline;
    return std::unique_ptr<shipping::SinkFormat>(std::make_unique<shipping::InfluxFormat>(o));
  }
  if (sink.format == "otlp") {
    shipping::OtlpOptions o;
    o.host_id = id.host_id;
    o.scope_version = id.version;
    o.cmdline = sink.cmdline;
    return std::unique_ptr<shipping::SinkFormat>(std::make_unique<shipping::OtlpFormat>(o));
  }
  return Error::format("sink {}: unknown format \"{}\" (accepted: native, influx, otlp)", sink.name,
                       sink.format);
}

std::string sink_request_url(const SinkConfig& sink) {
  if (sink.format != "influx") return sink.url;
  return shipping::influx_write_url(
      sink.url, sink.database,
      shipping::parse_precision(sink.precision).value_or(shipping::TimePrecision::ns));
}

}  // namespace tally::agent
