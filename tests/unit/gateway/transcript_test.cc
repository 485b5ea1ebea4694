#include "gateway/transcript.h"

#include <gtest/gtest.h>

#include "operator/audit/blob.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

TEST(Transcript, MasksKnownSecretsAndCredentialShapes) {
  struct Case {
    std::string in;
    std::string out;
  };
  const std::string key = "sk-ant-api03-" + std::string(40, 'K');
  const std::vector<Case> cases = {
      {"the key is " + key + ".", "the key is [masked:known-secret]."},
      {"token=ghp_" + std::string(36, 'a') + " ok", "token=[masked:github-token] ok"},
      {"AKIAABCDEFGHIJKLMNOP", "[masked:aws-access-key-id]"},
      {"AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"},
      {"Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "Authorization: Bearer [masked:bearer-token]"},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----",
       "-----BEGIN RSA PRIVATE KEY-----[masked:private-key]-----END RSA PRIVATE KEY-----"},
      {"ordinary code: int main() { return 0; }", "ordinary code: int main() { return 0; }"},
      {"sk-ant-short", "sk-ant-short"},
      // A URL's userinfo password: a run's proxy URL, a remote with a token.
      {"HTTPS_PROXY=http://run:3f9a0c1d@paddock-gateway:8080", "HTTPS_PROXY=http://run:[masked:url-password]@paddock-gateway:8080"},
      {"git remote: https://x-access-token:tok123@example.com/a.git and https://example.com/b",
       "git remote: https://x-access-token:[masked:url-password]@example.com/a.git and https://example.com/b"},
      {"http://example.com/path@v2 and http://user@example.com/", "http://example.com/path@v2 and http://user@example.com/"},
      {"> Proxy-Authorization: Basic cnVuOnBkay10b2tlbi0xMjM0NTY3ODkw\n", "> Proxy-Authorization: Basic [masked:basic-credentials]\n"},
      {"Basic auth is off", "Basic auth is off"},
  };
  for (const auto& c : cases) EXPECT_EQ(maskCredentials(c.in, {key}), c.out) << c.in;
  // Linear: a long text of many URLs is masked in one pass.
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "http://u:p@h/ ";
  std::string masked = maskCredentials(many, {});
  EXPECT_EQ(masked.find("u:p@"), std::string::npos);
  EXPECT_EQ(masked.size(), many.size() + 100000 * (std::string("[masked:url-password]").size() - 1));
}

TEST(Transcript, ConversationIndexYieldsOnlyNewMessages) {
  ConversationIndex index;
  json m = json::array({{{"role", "user"}, {"content", "task"}}});
  EXPECT_EQ(index.advance("ns/r", m), 0u);
  m.push_back({{"role", "assistant"}, {"content", "calling a tool"}});
  m.push_back({{"role", "user"}, {"content", "tool result"}});
  EXPECT_EQ(index.advance("ns/r", m), 2u);  // the assistant turn is the recorded response
  json side = json::array({{{"role", "user"}, {"content", "write a title"}}});
  EXPECT_EQ(index.advance("ns/r", side), 0u);  // another conversation
  EXPECT_EQ(index.advance("ns/other", m), 0u);
  json shorter = json::array({{{"role", "user"}, {"content", "task"}}});
  EXPECT_EQ(index.advance("ns/r", shorter), 0u);  // compacted: recorded whole again
}

TEST(Transcript, BuildsAMaskedRecordWithBlobs) {
  const std::string key = "sk-ant-api03-" + std::string(40, 'K');
  CallFacts f;
  f.ns = "team";
  f.name = "run";
  f.model = "m";
  f.new_messages = json::array({{{"role", "user"}, {"content", "use " + key}},
                                {{"role", "user"}, {"content", std::string(5000, 'x')}}});
  f.response_content = json::array({{{"type", "text"}, {"text", "ok"}}});
  f.stop_reason = "end_turn";
  f.usage = Usage{10, 2, 0, 0};
  f.charged_nano = 60000;
  TranscriptRecord t = buildTranscript(f, {key}, 4096);
  EXPECT_EQ(t.entry.action, audit::Action::ModelCall);
  EXPECT_EQ(t.entry.run.ns, "team");
  std::string dumped = t.entry.details.dump();
  EXPECT_EQ(dumped.find(key), std::string::npos);
  EXPECT_EQ(t.entry.details["messages"][0]["content"], "use [masked:known-secret]");
  ASSERT_EQ(t.blobs.size(), 1u);
  EXPECT_EQ(t.blobs[0], std::string(5000, 'x'));
  EXPECT_EQ(audit::blobRefHash(t.entry.details["messages"][1]["content"]), audit::blobHash(t.blobs[0]));
  EXPECT_EQ(t.entry.details["costUSD"], "0.00006");
  EXPECT_TRUE(audit::validateEntry(t.entry));
}

}  // namespace
}  // namespace paddock::gateway
