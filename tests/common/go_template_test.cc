// nld::GoTemplate: the Go text/template subset of the `template` plugin's records. The rendered
// records are compared with the reference binary in tests/integration/test_template.py.
#include <gtest/gtest.h>

#include "common/go_text.h"

namespace nld {
namespace {

GoTemplate::Data data() {
  GoTemplate::Data d;
  d.name = "web-7.tpl.example.org.";
  d.zone = "tpl.example.org.";
  d.cls = "IN";
  d.type = "A";
  d.remote = "10.0.0.5";
  d.match = {"web-7.tpl.example.org.", "web", "7"};
  d.group = {{"host", "web"}, {"num", "7"}};
  return d;
}

std::string render(const char* text) {
  auto t = GoTemplate::compile(text);
  EXPECT_TRUE(t.ok()) << t.error().message();
  if (!t) return "<compile error>";
  auto out = t->execute(data());
  return out ? *out : "<error: " + out.error().message() + ">";
}

TEST(GoTemplate, Actions) {
  EXPECT_EQ(render("{{ .Name }} 60 IN A 10.0.0.{{.Group.num}}"),
            "web-7.tpl.example.org. 60 IN A 10.0.0.7");
  EXPECT_EQ(render("{{.Zone}} {{ .Class }} {{ .Type }} {{ .Remote }}"),
            "tpl.example.org. IN A 10.0.0.5");
  EXPECT_EQ(render("{{ index .Match 0 }}|{{ index .Match 2 }}|{{ index .Group \"host\" }}"),
            "web-7.tpl.example.org.|7|web");
  EXPECT_EQ(render("no actions at all"), "no actions at all");
  EXPECT_EQ(render(""), "");
  // Go's trim markers eat the whitespace on their side.
  EXPECT_EQ(render("a   {{- .Type -}}   b"), "aAb");
  // A missing map key: Go prints "<no value>" for .Group.x, "" for index .Group "x".
  EXPECT_EQ(render("[{{ .Group.nope }}][{{ index .Group \"nope\" }}]"), "[<no value>][]");
  // An index out of range fails the execution, as Go's.
  EXPECT_EQ(render("{{ index .Match 3 }}"), "<error: error calling index: index out of range: 3>");
}

TEST(GoTemplate, RefusedActions) {
  for (const char* text :
       {"{{ .Message }}", "{{ .Question.Name }}", "{{ if .Name }}x{{ end }}",
        "{{ .Name | printf \"%s\" }}", "{{ index .Match -1 }}", "{{ index .Group x }}",
        "{{ .Group. }}", "{{ .Name", "{{}}", "{{ /* comment */ }}", "{{ .Meta \"x\" }}"}) {
    auto t = GoTemplate::compile(text);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_FALSE(t.error().message().empty()) << text;
  }
}

}  // namespace
}  // namespace nld
