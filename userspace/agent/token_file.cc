#include "agent/token_file.h"

#include <openssl/evp.h>

#include <vector>

#include <fmt/format.h>

#include "accounting/procfs.h"

namespace tally::agent {

Result<std::string> read_token(const std::string& path) {
  if (path.empty()) return std::string();
  std::string token;
  if (!accounting::procfs::read_small_file(path.c_str(), token)) {
    return errno_error(fmt::format("read token file {}", path));
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return Error::format("token file {} is empty", path);
  return token;
}

Result<std::string> read_basic_auth(const std::string& user, const std::string& password_file) {
  auto password = read_token(password_file);
  if (!password.ok()) return password.error();
  if (user.find(':') != std::string::npos) {
    return Error::format("basic auth user \"{}\" holds a ':', which basic auth cannot carry", user);
  }
  const std::string plain = user + ":" + *password;
  std::vector<unsigned char> out(4 * ((plain.size() + 2) / 3) + 1);
  const int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(plain.data()),
                                static_cast<int>(plain.size()));
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

}  // namespace tally::agent
