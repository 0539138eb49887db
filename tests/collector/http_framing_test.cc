#include "collector/http_framing.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include <boost/beast/http/error.hpp>
#include <nlohmann/json.hpp>

namespace tally::collector {
namespace {

namespace http = boost::beast::http;

std::string error_of(const ApiResponse& r) {
  return nlohmann::json::parse(r.body)["error"].get<std::string>();
}

TEST(FramingFailure, AFullBufferAfterTheLastChunkIsATrailerOverTheLimit) {
  for (std::string_view rest :
       {"\r\n0\r\nX-Big: aaaa", "0\r\nX: a\r\nY: b", "000;ext=1\r\nX-", "0 \r\nX"}) {
    auto r = framing_failure(http::error::buffer_overflow, ReadPhase::body, rest, 100);
    ASSERT_TRUE(r) << rest;
    EXPECT_EQ(r->status, 431u) << rest;
    EXPECT_EQ(error_of(*r), "chunked body: trailer section over 65535 bytes");
  }
}

TEST(FramingFailure, AFullBufferInAChunkSizeLineIsAnExtensionOverTheLimit) {
  for (std::string_view rest : {"1;x=aaaa", "\r\n0;x=aaaaa", "0a\r\nX", "10;y\r\n"}) {
    auto r = framing_failure(http::error::buffer_overflow, ReadPhase::body, rest, 100);
    ASSERT_TRUE(r) << rest;
    EXPECT_EQ(r->status, 400u) << rest;
    EXPECT_EQ(error_of(*r),
              "chunked body: chunk-size line (with chunk extensions) over 65535 bytes");
  }
}

TEST(FramingFailure, HeaderOverTheLimitIs431) {
  auto r = framing_failure(http::error::header_limit, ReadPhase::header, "GET / HTTP/1.1\r\n", 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431u);
  EXPECT_EQ(error_of(*r), "request header: more than 16384 bytes");
}

TEST(FramingFailure, BodyOverTheLimitIs413SayingWhetherAnyIsTaken) {
  auto none = framing_failure(http::error::body_limit, ReadPhase::body, "", 0);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 413u);
  EXPECT_EQ(error_of(*none), "body: this endpoint takes none");
  auto some = framing_failure(http::error::body_limit, ReadPhase::body, "", 1000);
  EXPECT_EQ(error_of(*some), "body: more than the limit of 1000 bytes");
}

TEST(FramingFailure, NobodyToAnswerWhenThePeerLeftOrTimedOut) {
  EXPECT_FALSE(framing_failure(http::error::end_of_stream, ReadPhase::header, "", 0));
  EXPECT_FALSE(framing_failure(http::error::partial_message, ReadPhase::body, "", 0));
  EXPECT_FALSE(framing_failure(boost::beast::error::timeout, ReadPhase::header, "", 0));
  EXPECT_FALSE(framing_failure(boost::asio::error::connection_reset, ReadPhase::body, "", 0));
}

TEST(FramingFailure, OtherParserErrorsAre400) {
  auto r = framing_failure(http::error::bad_chunk, ReadPhase::body, "", 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400u);
}

TEST(ParserExceptionResponse, FieldTooLargeIs431OutOfMemory503) {
  EXPECT_EQ(parser_exception_response(std::length_error("field value too large")).status, 431u);
  ApiResponse oom = parser_exception_response(std::bad_alloc());
  EXPECT_EQ(oom.status, 503u);
  EXPECT_GT(oom.retry_after, 0u);
  EXPECT_EQ(parser_exception_response(std::runtime_error("x")).status, 400u);
}

}  // namespace
}  // namespace tally::collector
