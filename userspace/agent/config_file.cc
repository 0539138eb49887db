#include "agent/config_file.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "agent/listen_address.h"
#include "agent/settings.h"
#include "agent/sink_formats.h"

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

  // A number that may have a fraction (0.5); integers are accepted as well.
  Status number(std::string_view key, std::uint64_t min, std::uint64_t max, double& out) {
    const toml::node* n = find(key);
    if (!n) return ok_status();
    std::optional<double> v = n->value_exact<double>();
    if (!v) {
      if (auto i = n->value_exact<std::int64_t>()) v = static_cast<double>(*i);
    }
    if (!v) return error(*n, key, fmt::format("expected a number, got {}", type_name(*n)));
    if (!(*v >= static_cast<double>(min) && *v <= static_cast<double>(max))) {
      return error(*n, key, fmt::format("{} is out of range (accepted: {} to {})", *v, min, max));
    }
    out = *v;
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

// Reads one setting of the table `r` reads into `config`, checked as the
// settings table says.
template <typename Config>
Status read_setting(TableReader& r, const Setting& setting, Config& config) {
  return std::visit(
      [&](auto member) -> Status {
        if constexpr (!std::is_same_v<typename SettingStruct<decltype(member)>::type, Config>) {
          return ok_status();  // not a field of this table's struct
        } else {
          auto& value = config.*member;
          using T = std::decay_t<decltype(value)>;
          const std::string_view key = setting.key;
          if constexpr (std::is_same_v<T, bool>) {
            return r.boolean(key, value);
          } else if constexpr (std::is_same_v<T, AttachMode>) {
            std::string name = attach_mode_name(value);
            TALLY_TRY(r.choice(key, setting.choices, name));
            value = attach_mode_from_name(name);
            return ok_status();
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (!setting.choices.empty()) return r.choice(key, setting.choices, value);
            if (!setting.listen_address) return r.string(key, value);
            return r.checked_string(key, value, [](const std::string& v) {
              if (v.empty()) return std::string();
              auto a = parse_listen_address(v);
              return a.ok() ? std::string() : a.error().message();
            });
          } else if constexpr (std::is_same_v<T, double>) {
            return r.number(key, setting.min, setting.max, value);
          } else {
            return r.integer(key, setting.min, setting.max, value);
          }
        }
      },
      setting.field);
}

// Reads every setting of `table`, then rejects keys it does not have.
template <typename Config>
Status read_table(TableReader& r, std::string_view table, Config& config) {
  for (const Setting& setting : settings()) {
    if (setting.table == table) TALLY_TRY(read_setting(r, setting, config));
  }
  return r.finish();
}

Status read_sink(TableReader& r, SinkConfig& s) {
  TALLY_TRY(read_table(r, "sink", s));
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
  // The native sink ships every process: tally-collector stores them all.
  for (std::string_view key : {"processes", "top_n", "min_cpu_pct", "max_groups"}) {
    if (s.format == "native" && r.given(key)) {
      return r.error_at(key,
                        "only for the time-series formats (influx, otlp, remote_write); "
                        "the native sink ships every process");
    }
  }
  const bool remote_write = s.format == "remote_write";
  for (std::string_view key : {"username", "password_file"}) {
    if (!remote_write && r.given(key)) return r.error_at(key, "only for format = \"remote_write\"");
  }
  if (r.given("username") != r.given("password_file")) {
    return r.error_at(r.given("username") ? "username" : "password_file",
                      "basic auth needs both username and password_file");
  }
  if (r.given("password_file") && r.given("token_file")) {
    return r.error_at("password_file",
                      "give token_file (bearer) or username and password_file "
                      "(basic), not both");
  }
  return ok_status();
}

// [[group]] tables: a name and exactly one pattern (comm, cmdline or cgroup).
Status read_groups(const toml::node& node, std::string_view source,
                   std::vector<GroupConfig>& groups) {
  const toml::array* arr = node.as_array();
  if (!arr || !arr->is_array_of_tables()) {
    return Error::format("{}:{}: group: expected [[group]] tables, got {}", source,
                         node.source().begin.line, type_name(node));
  }
  groups.clear();
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::table& t = *arr->get(i)->as_table();
    const auto line = arr->get(i)->source().begin.line;
    TableReader r(t, fmt::format("group[{}].", i), source);
    GroupConfig g;
    std::string comm, cmdline, cgroup;
    TALLY_TRY(r.string("name", g.name));
    TALLY_TRY(r.string("comm", comm));
    TALLY_TRY(r.string("cmdline", cmdline));
    TALLY_TRY(r.string("cgroup", cgroup));
    TALLY_TRY(r.finish());
    if (g.name.empty()) {
      return Error::format("{}:{}: group[{}].name: missing (a group's name is its label value)",
                           source, line, i);
    }
    const int patterns =
        (r.given("comm") ? 1 : 0) + (r.given("cmdline") ? 1 : 0) + (r.given("cgroup") ? 1 : 0);
    if (patterns != 1) {
      return Error::format(
          "{}:{}: group[{}] (\"{}\"): give exactly one of comm, cmdline or cgroup "
          "(a regular expression), not {}",
          source, line, i, g.name, patterns);
    }
    g.field = r.given("comm") ? "comm" : r.given("cmdline") ? "cmdline" : "cgroup";
    g.pattern = r.given("comm") ? comm : r.given("cmdline") ? cmdline : cgroup;
    groups.push_back(std::move(g));
  }
  return ok_status();
}

// Ranges are checked key by key; this one needs the whole value.
Result<AgentConfig> check_powers_of_two(const AgentConfig& c, std::string_view source) {
  for (const Setting& setting : settings()) {
    if (!setting.power_of_two) continue;
    const std::uint64_t value = c.*std::get<std::uint32_t AgentConfig::*>(setting.field);
    if (!power_of_two_problem(setting, value).empty()) {
      return Error::format("{}: {}.{}: {} is not a power of two (accepted: {}, {}, ..., {})",
                           source, setting.table, setting.key, value, setting.min, setting.min * 2,
                           setting.max);
    }
  }
  return c;
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
    if (k == "group") {
      TALLY_TRY(read_groups(node, source, c.groups));
      continue;
    }
    const toml::table* table = node.as_table();
    const auto& tables = setting_tables();
    if (!table || std::find(tables.begin(), tables.end(), k) == tables.end()) {
      return Error::format(
          "{}:{}: {}: unknown {} (accepted: [agent], [bpf], [outbox], [prometheus], [kubelet], "
          "[[sink]], [[group]])",
          source, line, k, table ? "table" : "key");
    }
    TableReader r(*table, std::string(k) + ".", source);
    TALLY_TRY(read_table(r, k, c));
  }
  if (auto groups = compile_groups(c.groups); !groups.ok()) {
    return Error::format("{}: {}", source, groups.error().message());
  }
  return check_powers_of_two(c, source);
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
