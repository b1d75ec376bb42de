#include "flags/flag_set.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace nld::flags {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

std::vector<std::string> parseArgs(FlagSet& fs, std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"prog"};
  argv.insert(argv.end(), args.begin(), args.end());
  return fs.parse(static_cast<int>(argv.size()), argv.data());
}

std::string errorOf(FlagSet& fs, std::initializer_list<const char*> args) {
  try {
    parseArgs(fs, args);
  } catch (const FlagError& e) {
    return e.what();
  }
  return "<no error>";
}

struct Vars {
  std::string s;
  bool b = false;
  int64_t i = 0;
  nanoseconds d{};
  nanoseconds sync{};
};

void defineAll(FlagSet& fs, Vars& v) {
  fs.addString("localip", &v.s, "def", "local IPs");
  fs.addBool("setupiptables", &v.b, true, "set up rules");
  fs.addInt("dns.port", &v.i, 53, "port");
  fs.alias("p", "dns.port");
  fs.addDuration("timeout", &v.d, milliseconds(300), "timeout");
  fs.addDuration("syncinterval", &v.sync, seconds(60), "sync", seconds(1));
}

TEST(FlagSet, DefaultsApplyWithoutArguments) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  EXPECT_TRUE(parseArgs(fs, {}).empty());
  EXPECT_EQ(v.s, "def");
  EXPECT_TRUE(v.b);
  EXPECT_EQ(v.i, 53);
  EXPECT_EQ(v.d, milliseconds(300));
  EXPECT_EQ(v.sync, seconds(60));
  EXPECT_FALSE(fs.isSet("localip"));
  EXPECT_FALSE(fs.isSet("dns.port"));
}

TEST(FlagSet, EverySyntaxForm) {
  for (auto args : std::vector<std::vector<const char*>>{{"-localip", "1.2.3.4"},
                                                         {"-localip=1.2.3.4"},
                                                         {"--localip", "1.2.3.4"},
                                                         {"--localip=1.2.3.4"}}) {
    FlagSet fs("prog");
    Vars v;
    defineAll(fs, v);
    std::vector<const char*> argv{"prog"};
    argv.insert(argv.end(), args.begin(), args.end());
    EXPECT_TRUE(fs.parse(static_cast<int>(argv.size()), argv.data()).empty());
    EXPECT_EQ(v.s, "1.2.3.4") << args[0];
    EXPECT_TRUE(fs.isSet("localip"));
  }
}

TEST(FlagSet, ValueMayStartWithDashOrBeEmpty) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  parseArgs(fs, {"-localip", "-x"});
  EXPECT_EQ(v.s, "-x");
  parseArgs(fs, {"-localip="});
  EXPECT_EQ(v.s, "");
  parseArgs(fs, {"-localip=a=b"});
  EXPECT_EQ(v.s, "a=b");
}

TEST(FlagSet, BoolForms) {
  struct Case {
    std::vector<const char*> args;
    bool want;
  };
  for (const Case& c : std::vector<Case>{{{"-setupiptables"}, true},
                                         {{"-setupiptables=false"}, false},
                                         {{"--setupiptables=0"}, false},
                                         {{"-setupiptables=F"}, false},
                                         {{"-setupiptables=FALSE"}, false},
                                         {{"-setupiptables=False"}, false},
                                         {{"-setupiptables=f"}, false},
                                         {{"-setupiptables=1"}, true},
                                         {{"-setupiptables=t"}, true},
                                         {{"-setupiptables=TRUE"}, true},
                                         {{"-setupiptables=True"}, true}}) {
    FlagSet fs("prog");
    Vars v;
    defineAll(fs, v);
    v.b = !c.want;
    std::vector<const char*> argv{"prog"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    fs.parse(static_cast<int>(argv.size()), argv.data());
    EXPECT_EQ(v.b, c.want) << c.args[0];
  }
}

TEST(FlagSet, BoolNeverConsumesNextArgument) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  auto rest = parseArgs(fs, {"-setupiptables", "false", "-localip", "x"});
  EXPECT_TRUE(v.b);
  EXPECT_EQ(rest, (std::vector<std::string>{"false", "-localip", "x"}));
  EXPECT_EQ(v.s, "def");
}

TEST(FlagSet, StopsAtFirstNonFlagAndAtDoubleDash) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  EXPECT_EQ(parseArgs(fs, {"-p", "5353", "pos", "-localip", "x"}),
            (std::vector<std::string>{"pos", "-localip", "x"}));
  EXPECT_EQ(v.i, 5353);
  EXPECT_EQ(parseArgs(fs, {"--", "-localip", "x"}), (std::vector<std::string>{"-localip", "x"}));
  EXPECT_EQ(parseArgs(fs, {"-", "x"}), (std::vector<std::string>{"-", "x"}));
}

TEST(FlagSet, AliasSharesTargetAndSetState) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  parseArgs(fs, {"-p", "1053"});
  EXPECT_EQ(v.i, 1053);
  EXPECT_TRUE(fs.isSet("p"));
  EXPECT_TRUE(fs.isSet("dns.port"));
  parseArgs(fs, {"-dns.port=54"});
  EXPECT_EQ(v.i, 54);
}

TEST(FlagSet, IntForms) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  parseArgs(fs, {"-p", "0x10"});
  EXPECT_EQ(v.i, 16);
  parseArgs(fs, {"-p", "-7"});
  EXPECT_EQ(v.i, -7);
  parseArgs(fs, {"-p", "010"});
  EXPECT_EQ(v.i, 8);
  parseArgs(fs, {"-p", "0b101"});
  EXPECT_EQ(v.i, 5);
  parseArgs(fs, {"-p", "0"});
  EXPECT_EQ(v.i, 0);
  parseArgs(fs, {"-p", "9223372036854775807"});
  EXPECT_EQ(v.i, INT64_MAX);
}

TEST(FlagSet, ErrorMessagesMatchGo) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  EXPECT_EQ(errorOf(fs, {"-nope"}), "flag provided but not defined: -nope");
  EXPECT_EQ(errorOf(fs, {"--nope=1"}), "flag provided but not defined: -nope");
  EXPECT_EQ(errorOf(fs, {"-localip"}), "flag needs an argument: -localip");
  EXPECT_EQ(errorOf(fs, {"-p", "abc"}), "invalid value \"abc\" for flag -p: parse error");
  EXPECT_EQ(errorOf(fs, {"-dns.port=5x"}), "invalid value \"5x\" for flag -dns.port: parse error");
  EXPECT_EQ(errorOf(fs, {"-p", "99999999999999999999"}),
            "invalid value \"99999999999999999999\" for flag -p: value out of range");
  EXPECT_EQ(errorOf(fs, {"-p", ""}), "invalid value \"\" for flag -p: parse error");
  EXPECT_EQ(errorOf(fs, {"-setupiptables=yes"}),
            "invalid boolean value \"yes\" for -setupiptables: parse error");
  EXPECT_EQ(errorOf(fs, {"-timeout", "5"}), "invalid value \"5\" for flag -timeout: parse error");
  EXPECT_EQ(errorOf(fs, {"---x"}), "bad flag syntax: ---x");
  EXPECT_EQ(errorOf(fs, {"-=x"}), "bad flag syntax: -=x");
  EXPECT_EQ(errorOf(fs, {"--=x"}), "bad flag syntax: --=x");
  EXPECT_EQ(errorOf(fs, {"-syncinterval", "1x"}),
            "invalid value \"1x\" for flag -syncinterval: parse error");
}

TEST(FlagSet, HelpFlags) {
  for (const char* h : {"-h", "-help", "--help", "--h"}) {
    FlagSet fs("prog");
    Vars v;
    defineAll(fs, v);
    std::vector<const char*> argv{"prog", h};
    EXPECT_THROW(fs.parse(2, argv.data()), HelpRequested) << h;
  }
}

TEST(FlagSet, HelpIsNormalFlagWhenDefined) {
  FlagSet fs("prog");
  bool help = false;
  fs.addBool("help", &help, false, "help");
  std::vector<const char*> argv{"prog", "-help"};
  EXPECT_NO_THROW(fs.parse(2, argv.data()));
  EXPECT_TRUE(help);
}

TEST(FlagSet, RedefinitionThrows) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  EXPECT_THROW(fs.addString("localip", &v.s, "", ""), FlagError);
  EXPECT_THROW(fs.alias("p", "localip"), FlagError);
  EXPECT_THROW(fs.alias("q", "missing"), FlagError);
}

TEST(FlagSet, DurationWithBareIntegerUnit) {
  FlagSet fs("prog");
  Vars v;
  defineAll(fs, v);
  parseArgs(fs, {"-syncinterval", "5"});
  EXPECT_EQ(v.sync, seconds(5));
  parseArgs(fs, {"-syncinterval=1m30s"});
  EXPECT_EQ(v.sync, seconds(90));
  parseArgs(fs, {"-syncinterval=250ms"});
  EXPECT_EQ(v.sync, milliseconds(250));
  parseArgs(fs, {"-syncinterval=0"});
  EXPECT_EQ(v.sync, seconds(0));
  parseArgs(fs, {"-timeout", "2s"});
  EXPECT_EQ(v.d, seconds(2));
}

TEST(FlagSet, UsageLooksLikeGo) {
  FlagSet fs("node-cache");
  Vars v;
  fs.addString("localip", &v.s, "", "comma-separated `ips` to bind");
  fs.addBool("q", &v.b, false, "quiet");
  fs.addInt("dns.port", &v.i, 53, "port\nsecond line");
  fs.addDuration("syncinterval", &v.sync, seconds(60), "sync");
  fs.addString("upstreamsvc", &v.s, "kube-dns", "svc");
  EXPECT_EQ(fs.usage(),
            "Usage of node-cache:\n"
            "  -dns.port int\n    \tport\n    \tsecond line (default 53)\n"
            "  -localip ips\n    \tcomma-separated ips to bind\n"
            "  -q\tquiet\n"
            "  -syncinterval duration\n    \tsync (default 1m0s)\n"
            "  -upstreamsvc string\n    \tsvc (default \"kube-dns\")\n");
}

TEST(GoDuration, Parses) {
  EXPECT_EQ(parseGoDuration("0"), nanoseconds(0));
  EXPECT_EQ(parseGoDuration("-0"), nanoseconds(0));
  EXPECT_EQ(parseGoDuration("300ms"), milliseconds(300));
  EXPECT_EQ(parseGoDuration("1m30s"), seconds(90));
  EXPECT_EQ(parseGoDuration("1.5h"), seconds(5400));
  EXPECT_EQ(parseGoDuration("-1.5s"), milliseconds(-1500));
  EXPECT_EQ(parseGoDuration("+2s"), seconds(2));
  EXPECT_EQ(parseGoDuration(".5s"), milliseconds(500));
  EXPECT_EQ(parseGoDuration("5.s"), seconds(5));
  EXPECT_EQ(parseGoDuration("1ns"), nanoseconds(1));
  EXPECT_EQ(parseGoDuration("1us"), nanoseconds(1000));
  EXPECT_EQ(parseGoDuration("1\xc2\xb5s"), nanoseconds(1000));
  EXPECT_EQ(parseGoDuration("1\xce\xbcs"), nanoseconds(1000));
  EXPECT_EQ(parseGoDuration("1h2m3s4ms5us6ns"),
            nanoseconds(3723LL * 1000000000 + 4 * 1000000 + 5 * 1000 + 6));
  EXPECT_EQ(parseGoDuration("9223372036854775807ns"), nanoseconds(INT64_MAX));
  EXPECT_EQ(parseGoDuration("-9223372036854775808ns"), nanoseconds(INT64_MIN));
}

std::string durationError(const char* s) {
  try {
    parseGoDuration(s);
  } catch (const FlagError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(GoDuration, ErrorsMatchGo) {
  EXPECT_EQ(durationError(""), "time: invalid duration \"\"");
  EXPECT_EQ(durationError("5"), "time: missing unit in duration \"5\"");
  EXPECT_EQ(durationError("1x"), "time: unknown unit \"x\" in duration \"1x\"");
  EXPECT_EQ(durationError("."), "time: invalid duration \".\"");
  EXPECT_EQ(durationError("s"), "time: invalid duration \"s\"");
  EXPECT_EQ(durationError("-"), "time: invalid duration \"-\"");
  EXPECT_EQ(durationError("1s "), "time: unknown unit \"s \" in duration \"1s \"");
  EXPECT_EQ(durationError("9223372036854775808ns"),
            "time: invalid duration \"9223372036854775808ns\"");
  EXPECT_EQ(durationError("3000000h"), "time: invalid duration \"3000000h\"");
}

TEST(GoDuration, FormatsLikeGo) {
  EXPECT_EQ(formatGoDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(formatGoDuration(seconds(60)), "1m0s");
  EXPECT_EQ(formatGoDuration(seconds(10)), "10s");
  EXPECT_EQ(formatGoDuration(milliseconds(300)), "300ms");
  EXPECT_EQ(formatGoDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatGoDuration(nanoseconds(1500)), "1.5\xc2\xb5s");
  EXPECT_EQ(formatGoDuration(nanoseconds(12)), "12ns");
  EXPECT_EQ(formatGoDuration(seconds(3723)), "1h2m3s");
  EXPECT_EQ(formatGoDuration(seconds(-90)), "-1m30s");
  EXPECT_EQ(formatGoDuration(nanoseconds(INT64_MIN)), "-2562047h47m16.854775808s");
}

}  // namespace
}  // namespace nld::flags
