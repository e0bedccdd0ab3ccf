package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPolkitRule_PowerOff evaluates 50-relay-poweroff.rules the way polkitd
// does (JavaScript calling polkit.addRule), with node standing in for
// polkitd's JS engine: user relay gets exactly the logind power-off and
// reboot actions, everyone else and every other action are left alone.
func TestPolkitRule_PowerOff(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIP: node not installed; polkit rule not evaluated")
	}
	const harness = `
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", NOT_HANDLED: null}, addRule: f => rules.push(f)};
new Function("polkit", fs.readFileSync("50-relay-poweroff.rules", "utf8"))(polkit);
const cases = JSON.parse(process.argv[1]);
console.log(cases.map(([user, id]) => String(rules[0]({id}, {user}))).join(" "));
`
	cases := []struct{ user, action, want string }{
		{"relay", "org.freedesktop.login1.power-off", "yes"},
		{"relay", "org.freedesktop.login1.power-off-multiple-sessions", "yes"},
		{"relay", "org.freedesktop.login1.power-off-ignore-inhibit", "yes"},
		{"relay", "org.freedesktop.login1.reboot", "yes"},
		{"relay", "org.freedesktop.login1.reboot-ignore-inhibit", "yes"},
		{"relay", "org.freedesktop.login1.suspend", "null"},
		{"relay", "org.freedesktop.systemd1.manage-units", "null"},
		{"pi", "org.freedesktop.login1.power-off", "null"},
		{"relayx", "org.freedesktop.login1.reboot", "null"},
	}
	var arg strings.Builder
	arg.WriteString("[")
	for i, c := range cases {
		if i > 0 {
			arg.WriteString(",")
		}
		arg.WriteString(`["` + c.user + `","` + c.action + `"]`)
	}
	arg.WriteString("]")
	out, err := exec.Command(node, "-e", harness, arg.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(cases) {
		t.Fatalf("got %q", out)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("user %s, action %s: %s, want %s", c.user, c.action, got[i], c.want)
		}
	}
}
