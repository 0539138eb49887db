#include "shipping/url_redaction.h"

#include <gtest/gtest.h>

namespace tally::shipping {
namespace {

TEST(RedactUrl, RemovesUserinfoAndSecretParametersAndKeepsTheRest) {
  EXPECT_EQ(redact_url("http://alice:secret@host:8086/write?db=x&u=alice&p=pw&precision=ns"),
            "http://REDACTED@host:8086/write?db=x&u=alice&p=REDACTED&precision=ns");
  EXPECT_EQ(redact_url("https://TOKEN@h/v1/metrics"), "https://REDACTED@h/v1/metrics");
  // The last '@' of the authority ends the userinfo; '@' in the path or
  // query is not userinfo.
  EXPECT_EQ(redact_url("http://a:p@ss@h/x@y?q=a@b"), "http://REDACTED@h/x@y?q=a@b");
  EXPECT_EQ(redact_url("http://h/x?apikey=1;access_token=2&api_key=3&X-Amz-Signature=4&sig=5"),
            "http://h/x?apikey=REDACTED;access_token=REDACTED&api_key=REDACTED"
            "&X-Amz-Signature=REDACTED&sig=REDACTED");
  EXPECT_EQ(redact_url("http://h/x?Password=1&AUTH=2#frag"),
            "http://h/x?Password=REDACTED&AUTH=REDACTED#frag");
  // Nothing secret: unchanged.
  EXPECT_EQ(redact_url("http://127.0.0.1:9099/v1/batches"), "http://127.0.0.1:9099/v1/batches");
  EXPECT_EQ(redact_url("http://h/x?db=tally&flag"), "http://h/x?db=tally&flag");
  // No scheme (curl takes http): the authority still starts the URL.
  EXPECT_EQ(redact_url("bob:pw@h:1/x"), "REDACTED@h:1/x");
  EXPECT_EQ(redact_url(""), "");
}

TEST(RedactUrl, SecretParameterNames) {
  for (const char* name :
       {"token", "apikey", "api-key", "Access_Token", "password", "passwd", "secret",
        "client_secret", "sig", "signature", "auth", "p", "credential", "sessionid"}) {
    EXPECT_TRUE(is_secret_parameter(name)) << name;
  }
  for (const char* name : {"db", "u", "precision", "org", "bucket", "rp", "consistency"}) {
    EXPECT_FALSE(is_secret_parameter(name)) << name;
  }
}

}  // namespace
}  // namespace tally::shipping
