#include "agent/config_file.h"

#include <cerrno>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "agent/listen_address.h"

namespace tally::agent {

const char* attach_mode_name(AttachMode mode) {
  switch (mode) {
    case AttachMode::tp_btf:
      return "tp_btf";
    case AttachMode::raw_tp:
      return "raw_tp";
    case AttachMode::automatic:
      return "auto";
  }
  return "auto";
}

namespace {

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return fmt::format("a string (\"{}\")", *n.value<std::string>());
    case toml::node_type::integer:
      return fmt::format("an integer ({})", *n.value<std::int64_t>());
    case toml::node_type::floating_point:
      return fmt::format("a float ({})", *n.value<double>());
    case toml::node_type::boolean:
      return fmt::format("a boolean ({})", *n.value<bool>());
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date/time";
  }
}

std::string join(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// Reads the keys of one TOML table, checking each against its type and
// range, and rejects keys it was not asked about.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, std::string_view source)
      : table_(table), prefix_(std::move(prefix)), source_(source) {}

  template <typename T>
  Status integer(std::string_view key, std::uint64_t min, std::uint64_t max, T& out) {
    const toml::node* n = find(key);
    if (!n) return ok_status();
    auto v = n->value_exact<std::int64_t>();
    if (!v) return error(*n, key, fmt::format("expected an integer, got {}", type_name(*n)));
    if (*v < 0 || static_cast<std::uint64_t>(*v) < min || static_cast<std::uint64_t>(*v) > max) {
      return error(*n, key, fmt::format("{} is out of range (accepted: {} to {})", *v, min, max));
    }
    out = static_cast<T>(*v);
    return ok_status();
  }

  Status boolean(std::string_view key, bool& out) {
    const toml::node* n = find(key);
    if (!n) return ok_status();
    auto v = n->value_exact<bool>();
    if (!v) return error(*n, key, fmt::format("expected true or false, got {}", type_name(*n)));
    out = *v;
    return ok_status();
  }

  Status string(std::string_view key, std::string& out) {
    const toml::node* n = find(key);
    if (!n) return ok_status();
    auto v = n->value_exact<std::string>();
    if (!v) return error(*n, key, fmt::format("expected a string, got {}", type_name(*n)));
    out = *v;
    return ok_status();
  }

  // A string that must pass `check`, which returns the problem or "".
  Status checked_string(std::string_view key, std::string& out,
                        const std::function<std::string(const std::string&)>& check) {
    std::string value = out;
    if (auto st = string(key, value); !st.ok()) return st;
    if (const toml::node* n = table_.get(key)) {
      if (std::string problem = check(value); !problem.empty()) return error(*n, key, problem);
    }
    out = value;
    return ok_status();
  }

  Status choice(std::string_view key, const std::vector<std::string_view>& accepted,
                std::string& out) {
    std::string value = out;
    if (auto st = string(key, value); !st.ok()) return st;
    for (auto a : accepted) {
      if (value == a) {
        out = value;
        return ok_status();
      }
    }
    return error(*find(key), key,
                 fmt::format("\"{}\" is not accepted (accepted: {})", value, join(accepted)));
  }

  // Any key not read above is unknown.
  Status finish() {
    for (auto&& [k, v] : table_) {
      if (!seen_.count(std::string(k.str()))) {
        std::vector<std::string_view> accepted(asked_.begin(), asked_.end());
        return error(v, k.str(), fmt::format("unknown key (accepted: {})", join(accepted)));
      }
    }
    return ok_status();
  }

  bool given(std::string_view key) const { return table_.get(key) != nullptr; }
  Status error_at(std::string_view key, const std::string& problem) const {
    return error(*table_.get(key), key, problem);
  }

  Status error(const toml::node& n, std::string_view key, const std::string& problem) const {
    return Error::format("{}:{}: {}{}: {}", source_, n.source().begin.line, prefix_, key, problem);
  }

 private:
  const toml::node* find(std::string_view key) {
    asked_.push_back(key);
    const toml::node* n = table_.get(key);
    if (n) seen_.insert(std::string(key));
    return n;
  }

  const toml::table& table_;
  std::string prefix_;
  std::string_view source_;
  std::vector<std::string_view> asked_;
  std::set<std::string> seen_;
};

Status read_agent(TableReader& r, AgentConfig& c) {
  TALLY_TRY(r.integer("interval", 1, 86400, c.interval_s));
  TALLY_TRY(r.boolean("include_idle", c.include_idle));
  TALLY_TRY(r.choice("backend", {"auto", "bpf", "procfs"}, c.backend));
  std::string attach = attach_mode_name(c.attach);
  TALLY_TRY(r.choice("attach", {"auto", "tp_btf", "raw_tp"}, attach));
  c.attach = attach == "tp_btf"   ? AttachMode::tp_btf
             : attach == "raw_tp" ? AttachMode::raw_tp
                                  : AttachMode::automatic;
  TALLY_TRY(r.choice("log_level", {"debug", "info", "warning", "error"}, c.log_level));
  TALLY_TRY(r.string("socket", c.socket_path));
  TALLY_TRY(r.string("socket_group", c.socket_group));
  TALLY_TRY(r.integer("shutdown_timeout", 0, 3600, c.shutdown_timeout_s));
  TALLY_TRY(r.integer("max_cmdline_bytes", 64, 1048576, c.max_cmdline_bytes));
  TALLY_TRY(r.boolean("drop_privileges", c.drop_privileges));
  return r.finish();
}

Status read_bpf(TableReader& r, AgentConfig& c) {
  TALLY_TRY(r.integer("slots_per_cpu", 64, 65536, c.slots_per_cpu));
  TALLY_TRY(r.integer("max_processes", 128, 4194304, c.max_processes));
  TALLY_TRY(r.integer("exec_cache", 64, 1048576, c.exec_cache));
  return r.finish();
}

Status read_outbox(TableReader& r, AgentConfig& c) {
  TALLY_TRY(r.string("path", c.outbox_path));
  TALLY_TRY(r.integer("cap_mib", 1, 1048576, c.outbox_cap_mib));
  TALLY_TRY(r.integer("batch_max_samples", 1, 1000000, c.batch_max_samples));
  TALLY_TRY(r.integer("batch_max_kib", 1, 65536, c.batch_max_kib));
  TALLY_TRY(r.integer("batch_max_age", 0, 86400, c.batch_max_age_s));
  return r.finish();
}

Status read_sink(TableReader& r, SinkConfig& s) {
  TALLY_TRY(r.string("name", s.name));
  TALLY_TRY(r.choice("format", {"native", "influx", "otlp"}, s.format));
  TALLY_TRY(r.string("url", s.url));
  TALLY_TRY(r.string("token_file", s.token_file));
  TALLY_TRY(r.string("ca_file", s.ca_file));
  TALLY_TRY(r.integer("connect_timeout", 1, 600, s.connect_timeout_s));
  TALLY_TRY(r.integer("timeout", 1, 3600, s.timeout_s));
  TALLY_TRY(r.integer("backoff_base_ms", 1, 600000, s.backoff_base_ms));
  TALLY_TRY(r.integer("backoff_cap", 1, 86400, s.backoff_cap_s));
  TALLY_TRY(r.integer("gzip_level", 0, 9, s.gzip_level));
  TALLY_TRY(r.string("database", s.database));
  TALLY_TRY(r.choice("precision", {"ns", "us", "ms", "s"}, s.precision));
  TALLY_TRY(r.boolean("cmdline", s.cmdline));
  TALLY_TRY(r.finish());
  // Keys that mean nothing to the chosen format are mistakes worth naming.
  const bool influx = s.format == "influx";
  if (!influx && r.given("database")) return r.error_at("database", "only for format = \"influx\"");
  if (!influx && r.given("precision")) {
    return r.error_at("precision", "only for format = \"influx\"");
  }
  if (s.format == "native" && r.given("cmdline")) {
    return r.error_at("cmdline",
                      "only for format = \"influx\" or \"otlp\" (native always sends it)");
  }
  return ok_status();
}

Status read_prometheus(TableReader& r, AgentConfig& c) {
  TALLY_TRY(r.checked_string("listen", c.prometheus_listen, [](const std::string& v) {
    if (v.empty()) return std::string();
    auto a = parse_listen_address(v);
    return a.ok() ? std::string() : a.error().message();
  }));
  TALLY_TRY(r.integer("top", 1, 100000, c.prometheus_top));
  TALLY_TRY(r.integer("min_cpu_ms", 0, 86400000, c.prometheus_min_cpu_ms));
  return r.finish();
}

}  // namespace

Result<AgentConfig> parse_config(std::string_view text, std::string_view source,
                                 const AgentConfig& base) {
  AgentConfig c = base;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Error::format("{}:{}:{}: invalid TOML: {}", source, e.source().begin.line,
                         e.source().begin.column, e.description());
  }

  bool sinks_given = false;
  for (auto&& [key, node] : root) {
    const std::string_view k = key.str();
    const int line = static_cast<int>(node.source().begin.line);
    if (k == "sink") {
      const toml::array* arr = node.as_array();
      if (!arr || !arr->is_array_of_tables()) {
        return Error::format("{}:{}: sink: expected [[sink]] tables, got {}", source, line,
                             type_name(node));
      }
      if (!sinks_given) c.sinks.clear();
      sinks_given = true;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        SinkConfig s;
        TableReader r(*arr->get(i)->as_table(), fmt::format("sink[{}].", i), source);
        TALLY_TRY(read_sink(r, s));
        if (s.url.empty()) {
          return Error::format("{}:{}: sink[{}].url: missing (every sink needs a url)", source,
                               arr->get(i)->source().begin.line, i);
        }
        for (const auto& other : c.sinks) {
          if (other.name == s.name) {
            return Error::format(
                "{}:{}: sink[{}].name: \"{}\" is used twice (names must be unique)", source,
                arr->get(i)->source().begin.line, i, s.name);
          }
        }
        c.sinks.push_back(std::move(s));
      }
      continue;
    }
    const toml::table* table = node.as_table();
    if (!table || (k != "agent" && k != "bpf" && k != "outbox" && k != "prometheus")) {
      return Error::format(
          "{}:{}: {}: unknown {} (accepted: [agent], [bpf], [outbox], [prometheus], [[sink]])",
          source, line, k, table ? "table" : "key");
    }
    TableReader r(*table, std::string(k) + ".", source);
    if (k == "agent") TALLY_TRY(read_agent(r, c));
    if (k == "bpf") TALLY_TRY(read_bpf(r, c));
    if (k == "outbox") TALLY_TRY(read_outbox(r, c));
    if (k == "prometheus") TALLY_TRY(read_prometheus(r, c));
  }
  if ((c.slots_per_cpu & (c.slots_per_cpu - 1)) != 0) {
    return Error::format(
        "{}: bpf.slots_per_cpu: {} is not a power of two (accepted: 64, 128, ..., 65536)", source,
        c.slots_per_cpu);
  }
  return c;
}

Result<AgentConfig> load_config_file(const std::string& path, bool required,
                                     const AgentConfig& base) {
  std::ifstream in(path);
  if (!in) {
    if (!required && errno == ENOENT) return base;
    return errno_error(fmt::format("read config file {}", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, base);
}

}  // namespace tally::agent
