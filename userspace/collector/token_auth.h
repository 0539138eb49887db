// Bearer-token authentication for the collector's API (RFC 6750 section
// 2.1): which credential, if any, a request's token belongs to.
//
// A credential is a name from the token file (token_file.h). A token
// without a name is its own credential, named by its fingerprint,
// "sha256:" and the first 16 hex digits of the token's SHA-256, so that
// what identifies it (in the database, logs and GET /v1/agents) is never
// the token itself. Writing that fingerprint as the name of a new token
// rotates a bare token without changing its credential.
//
// Tokens are secrets: they are kept only as SHA-256 digests in memory and
// never logged or echoed in a response.
//
// Thread safety: immutable after construction; authenticate() may be called
// from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "collector/token_file.h"
#include "tally/result.h"

namespace tally::collector {

// "sha256:9f86d081884c7d65"; nullopt only if SHA-256 is unavailable.
std::optional<std::string> token_fingerprint(std::string_view token);

class Credentials {
 public:
  // Lines as parse_token_file() returns them (unique tokens). Fails only
  // if SHA-256 is unavailable (a broken OpenSSL install).
  static Result<Credentials> from_lines(const std::vector<TokenLine>& lines);

  // Reads the token file; logs a warning for tokens too short to resist
  // guessing, naming the file and line.
  static Result<Credentials> load(const std::string& path);

  // The credential of `authorization` when it is "Bearer <token>" (scheme
  // case-insensitive) with a token of the file; nullopt otherwise. The
  // presented token is hashed and the digest looked up, so the time taken
  // says nothing about how close the presented token is to a real one.
  std::optional<std::string> authenticate(std::string_view authorization) const;

  std::size_t credentials() const { return credential_count_; }
  std::size_t tokens() const { return by_digest_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  struct DigestHash {
    std::size_t operator()(const Digest& d) const;
  };
  Credentials() = default;
  static std::optional<Digest> digest(std::string_view token);

  std::unordered_map<Digest, std::string, DigestHash> by_digest_;
  std::size_t credential_count_ = 0;
};

}  // namespace tally::collector
