// The page tally-collector serves at / (userspace/collector/web/), built
// into the binary at build time (web/embed.cmake): index.html, the page's
// script and style, and uPlot from npm (installed by scripts/bootstrap).
#pragma once

#include <string_view>

namespace tally::collector {

struct WebAsset {
  std::string_view path;  // "/", "/assets/app.js"
  std::string_view content_type;
  std::string_view body;
};

// nullptr: no such asset.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace tally::collector
