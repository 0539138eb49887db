#include "collector/names_members.h"

#include <nlohmann/json.hpp>

#include "collector/group_rollup.h"

namespace tally::collector {

NamesMembers parse_names_members(std::string_view names) {
  std::string object;
  object.reserve(names.size() + 2);
  object.append("{").append(names).append("}");
  auto members = nlohmann::json::parse(object, nullptr, false);
  NamesMembers out;
  if (!members.is_object()) return out;
  auto text = [&](const char* key) {
    auto it = members.find(key);
    return it != members.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.comm = text("comm");
  out.cmdline = text("cmdline");
  out.cgroup = text("cgroup");
  return out;
}

Result<const ProcessGroups*> ProcessGroupsCache::find(sql::Statement& names_of,
                                                      std::int64_t names_id) {
  if (auto it = kept_.find(names_id); it != kept_.end()) return &it->second;
  auto q = names_of.use();
  q->bind(1, names_id);
  auto row = q->step();
  if (!row.ok()) return row.error();
  if (!*row) return nullptr;
  ProcessGroups g;
  g.pid = static_cast<std::uint32_t>(q->column_u64(0));
  g.start_time_ns = q->column_u64(1);
  NamesMembers members = parse_names_members(q->column_text(2));
  g.comm = std::move(members.comm);
  g.cgroup = std::move(members.cgroup);
  g.key = process_group(g.pid, g.start_time_ns);
  if (kept_.size() >= max_) kept_.clear();
  return &kept_.emplace(names_id, std::move(g)).first->second;
}

}  // namespace tally::collector
