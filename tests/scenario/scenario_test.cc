// Runs every tests/scenario/cases/*.scn file as one parameterised test (README.md), plus tests
// of the runner itself: a scenario whose expectation is wrong must fail, at the right line.
#include "scenario/scenario.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <string>

namespace nld::test::scenario {
namespace {

class ScenarioCase : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioCase, Runs) {
  try {
    runScenario(loadScenario(GetParam()));
  } catch (const ScenarioError& e) {
    FAIL() << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ScenarioCase, ::testing::ValuesIn(listScenarios(NLD_SCENARIO_DIR)),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = std::filesystem::path(p.param).stem().string();
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(ScenarioCases, ThereAreCases) { EXPECT_GE(listScenarios(NLD_SCENARIO_DIR).size(), 14u); }

/// The message of the ScenarioError `fn` throws ("" if it throws none).
template <typename F>
std::string errorOf(F fn) {
  try {
    fn();
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kCorefile =
    "corefile:\n"
    "  .:53 {\n"
    "    cache 30\n"
    "    forward . UPSTREAM\n"
    "  }\n";

TEST(ScenarioParse, ErrorsNameFileAndLine) {
  const auto err = [](const std::string& steps) {
    return errorOf([&] { parseScenario(std::string(kCorefile) + steps, "t.scn"); });
  };
  EXPECT_EQ(err("step query a.example.org BOGUS\n"), "t.scn:6: unknown type 'BOGUS'");
  EXPECT_EQ(err("\nstep time 31s\n"), "t.scn:7: time takes +N(ms|s|m|h), not '31s'");
  EXPECT_EQ(err("step time +3d\n"), "t.scn:6: time unit 'd' is not ms, s, m or h");
  EXPECT_EQ(err("step upstream answer NOERROR A 300.1.1.1\n"),
            "t.scn:6: bad IPv4 address 300.1.1.1");
  EXPECT_EQ(err("step client expect YES\n"),
            "t.scn:6: unknown rcode 'YES' (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED)");
  EXPECT_EQ(err("step client expect NOERROR aa=2\n"), "t.scn:6: aa= takes 0 or 1, not '2'");
  EXPECT_EQ(err("step upstream answer NOERROR authority SOA example.org\n"),
            "t.scn:6: SOA needs ZONE MINIMUM");
  EXPECT_EQ(err("step upstream4 drop\n"), "t.scn:6: bad upstream number '4'");
  EXPECT_EQ(err("step upstream0 drop\n"), "t.scn:6: upstreams are numbered from 1");
  EXPECT_EQ(err("step walk\n"),
            "t.scn:6: unknown step 'walk' (query, upstream expect/answer/drop, time, client "
            "expect)");
  EXPECT_EQ(err("  step query a.example.org A\n"),
            "");  // indented: still part of the Corefile block (which then fails to load)
  EXPECT_EQ(errorOf([] { parseScenario("step query a.example.org A\n", "t.scn"); }),
            "t.scn:1: a step before corefile:");
  EXPECT_EQ(errorOf([] { parseScenario("# nothing\n", "t.scn"); }), "t.scn:1: no corefile:");
}

TEST(ScenarioParse, ReadsTheCorefileBlockDedented) {
  Scenario s = parseScenario(std::string("# c\n") + kCorefile + "step time +1s\n", "t.scn");
  EXPECT_EQ(s.corefile, ".:53 {\n  cache 30\n  forward . UPSTREAM\n}\n");
  EXPECT_EQ(s.corefile_line, 3);
  ASSERT_EQ(s.steps.size(), 1u);
  EXPECT_EQ(s.steps[0].line, 7);
  EXPECT_EQ(s.steps[0].time, std::chrono::seconds(1));
}

/// Runs the Corefile above with `steps`; returns the error ("" if it passed).
std::string run(const std::string& steps) {
  return errorOf([&] { runScenario(parseScenario(std::string(kCorefile) + steps, "t.scn")); });
}

constexpr const char* kMissThenHit =
    "step query a.example.org A\n"                        // 6
    "step upstream expect a.example.org A\n"              // 7
    "step upstream answer NOERROR ttl=300 A 192.0.2.1\n"  // 8
    "step client expect NOERROR A 192.0.2.1 ttl=30\n"     // 9
    "step time +10s\n"                                    // 10
    "step query a.example.org A\n"                        // 11
    "step upstream expect nothing\n";                     // 12

TEST(ScenarioRun, APassingScenarioPasses) {
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect NOERROR A 192.0.2.1 ttl=20\n"), "");
}

TEST(ScenarioRun, AWrongExpectationFailsAtItsLine) {
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect NOERROR A 192.0.2.1 ttl=21\n"),
            "t.scn:13: the query of line 11: A record has TTL 20, expected 21");
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect NOERROR A 192.0.2.9\n"),
            "t.scn:13: the query of line 11: answer section is A 192.0.2.1");
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect NXDOMAIN\n"),
            "t.scn:13: the query of line 11: got NOERROR an=1 ns=0, expected NXDOMAIN");
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect nothing\n"),
            "t.scn:13: expected no answer, but the query of line 11 got NOERROR an=1 ns=0");
  EXPECT_EQ(run(std::string(kMissThenHit) + "step client expect NOERROR qname=A.example.org\n"),
            "t.scn:13: the query of line 11: question name a.example.org., expected "
            "A.example.org.");
  EXPECT_EQ(run("step query a.example.org A\nstep upstream expect b.example.org A\n"),
            "t.scn:7: expected upstream query b.example.org A, got a.example.org. A over UDP");
  EXPECT_EQ(run("step query a.example.org A\nstep upstream expect nothing\n"),
            "t.scn:7: expected no upstream query, got a.example.org. A over UDP");
  EXPECT_EQ(run("step upstream answer NOERROR\n"),
            "t.scn:6: answer: the upstream has seen no query to answer");
  EXPECT_EQ(run("step client expect NOERROR\n"), "t.scn:6: no query is waiting for an answer");
}

TEST(ScenarioRun, ACorefileThatDoesNotLoadNamesItsBlock) {
  const std::string err = errorOf(
      [] { runScenario(parseScenario("corefile:\n  .:53 {\n    nosuchplugin\n  }\n", "t.scn")); });
  EXPECT_EQ(err.rfind("t.scn:2: the Corefile (its line 1 is this line) does not load: ", 0), 0u)
      << err;
}

}  // namespace
}  // namespace nld::test::scenario
