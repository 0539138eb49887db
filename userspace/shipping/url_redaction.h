// Sink URLs as they may be shown: in logs, `tally status` and error
// messages. Operators put credentials in URLs (http://user:pass@host/,
// InfluxDB 1.x's ?u=&p=, ?apikey=, ?access_token=), and status output is
// read by anyone in the socket's group and pasted into tickets.
#pragma once

#include <string>
#include <string_view>

namespace tally::shipping {

// url with its userinfo ("user:pass@") and the values of query parameters
// whose names look like secrets (token, key, password, secret, signature,
// auth, credential, and InfluxDB's "p") replaced by "REDACTED". Everything
// else, including the host, path and other parameters, is kept so that the
// URL still says where data goes.
std::string redact_url(std::string_view url);

// Whether a query parameter of this name holds a secret (case-insensitive).
bool is_secret_parameter(std::string_view name);

}  // namespace tally::shipping
