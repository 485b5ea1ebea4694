#include "operator/common/flags.h"

#include <gtest/gtest.h>

namespace paddock {
namespace {

struct Parsed {
  Flags::Outcome outcome;
  std::string error;
};

Parsed run(Flags& flags, std::vector<std::string> args, std::vector<std::string>* positional = nullptr) {
  std::vector<char*> argv{const_cast<char*>("prog")};
  for (auto& a : args) argv.push_back(a.data());
  Parsed p;
  p.outcome = flags.parse(static_cast<int>(argv.size()), argv.data(), p.error, positional);
  return p;
}

TEST(Flags, ParsesEveryKindAndBothSpellings) {
  std::string s = "x";
  bool b = false;
  int i = 1;
  double d = 0.5;
  std::chrono::milliseconds dur{1000};
  Flags flags("prog", "test");
  flags.add("name", &s, "a name");
  flags.add("on", &b, "a switch");
  flags.add("count", &i, "a count");
  flags.add("ratio", &d, "a ratio");
  flags.add("wait", &dur, "a duration");
  auto p = run(flags, {"--name=hello", "--on", "--count", "7", "--ratio=0.25", "--wait", "1m"});
  ASSERT_EQ(p.outcome, Flags::Outcome::Ok) << p.error;
  EXPECT_EQ(s, "hello");
  EXPECT_TRUE(b);
  EXPECT_EQ(i, 7);
  EXPECT_DOUBLE_EQ(d, 0.25);
  EXPECT_EQ(dur.count(), 60'000);
  p = run(flags, {"--on=false"});
  EXPECT_FALSE(b);
}

TEST(Flags, NamesTheFlagInEveryError) {
  int i = 0;
  std::chrono::milliseconds dur{0};
  Flags flags("prog", "test");
  flags.add("count", &i, "a count");
  flags.add("wait", &dur, "a duration such as 30s");
  auto p = run(flags, {"--count=abc"});
  EXPECT_EQ(p.outcome, Flags::Outcome::Error);
  EXPECT_NE(p.error.find("--count"), std::string::npos) << p.error;
  p = run(flags, {"--wait=soon"});
  EXPECT_NE(p.error.find("--wait"), std::string::npos) << p.error;
  p = run(flags, {"--nope"});
  EXPECT_NE(p.error.find("unknown flag --nope"), std::string::npos) << p.error;
  p = run(flags, {"--count"});
  EXPECT_NE(p.error.find("needs a value"), std::string::npos) << p.error;
  p = run(flags, {"stray"});
  EXPECT_EQ(p.outcome, Flags::Outcome::Error);
}

TEST(Flags, HelpListsEveryFlagWithItsDefault) {
  int i = 3;
  std::string s;
  Flags flags("prog", "does things");
  flags.add("count", &i, "How many.");
  flags.add("name", &s, "Who.");
  EXPECT_EQ(run(flags, {"--help"}).outcome, Flags::Outcome::Help);
  auto usage = flags.usage();
  EXPECT_NE(usage.find("--count value\n      How many. (default 3)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--name value\n      Who.\n"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--help"), std::string::npos);
  EXPECT_NE(usage.find("--version"), std::string::npos);
  EXPECT_EQ(run(flags, {"--count", "4", "--version"}).outcome, Flags::Outcome::Version);
}

TEST(Flags, CollectsPositionalArguments) {
  bool v = false;
  Flags flags("prog", "test");
  flags.add("verbose", &v, "more");
  std::vector<std::string> pos;
  auto p = run(flags, {"verify", "--verbose", "dir", "--", "--not-a-flag"}, &pos);
  ASSERT_EQ(p.outcome, Flags::Outcome::Ok) << p.error;
  EXPECT_EQ(pos, (std::vector<std::string>{"verify", "dir", "--not-a-flag"}));
  EXPECT_TRUE(v);
}

}  // namespace
}  // namespace paddock
