// Package deploy_test checks the packaging in deploy/ as far as a machine
// without a Docker engine or a running systemd can: the image's build line
// really injects the version and yields a static binary, the image runs as
// a non-root user on the port it exposes, the build context leaves out
// local credentials, the systemd unit parses and stops hookd within its
// timeout, and the environment file names real settings with their real
// defaults.
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testVersion = "1.2.3-deploytest"

func TestDeploy(t *testing.T) {
	df := parseDockerfile(t, "Dockerfile")
	bin := buildLikeDockerfile(t, df)
	help := serveHelp(t, bin)

	t.Run("Dockerfile/VersionInjected", func(t *testing.T) {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || string(out) != "hookd "+testVersion+"\n" {
			t.Fatalf("hookd --version = %q, %v; want %q: the -X path of the Dockerfile does not reach hookd.Version", out, err, "hookd "+testVersion)
		}
	})

	t.Run("Dockerfile/StaticBinary", func(t *testing.T) {
		// distroless/static has no C library: a dynamically linked binary
		// would fail there with a bare "no such file or directory".
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatal("the binary asks for a dynamic loader; build with CGO_ENABLED=0")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Fatalf("the binary needs shared libraries %v", libs)
		}
	})

	t.Run("Dockerfile/BuilderGo", func(t *testing.T) {
		builder := df.stages[0].from
		want := goDirective(t)
		tag, ok := strings.CutPrefix(builder, "golang:")
		if !ok || !versionAtLeast(tag, want) {
			t.Fatalf("builder image %s; want golang:%s or later (go.mod's go directive)", builder, want)
		}
	})

	t.Run("Dockerfile/Runtime", func(t *testing.T) {
		final := df.stages[len(df.stages)-1]
		if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
			t.Errorf("runtime image %s; want distroless static (nonroot) or scratch", final.from)
		}
		switch user := final.last("USER"); user {
		case "", "root", "0", "0:0", "root:root":
			t.Errorf("USER %q: the image must not run as root", user)
		}
		if got := final.last("ENTRYPOINT"); got != `["hookd"]` {
			t.Errorf("ENTRYPOINT %s, want [\"hookd\"]", got)
		}
		if got := final.last("CMD"); got != `["serve"]` {
			t.Errorf("CMD %s, want [\"serve\"]", got)
		}
		if !final.has("COPY", "/usr/local/bin/hookd") {
			t.Error("the binary is not copied to /usr/local/bin/hookd, on the image's PATH")
		}
		env := final.env()
		listen, database := env["HOOKD_LISTEN"], env["HOOKD_DATABASE"]
		if _, port, _ := strings.Cut(listen, ":"); !strings.HasPrefix(listen, "0.0.0.0:") || final.last("EXPOSE") != port {
			t.Errorf("HOOKD_LISTEN=%s with EXPOSE %s: hookd must listen on every interface, on the exposed port", listen, final.last("EXPOSE"))
		}
		volume := final.last("VOLUME")
		dir := path.Dir(strings.TrimPrefix(database, "sqlite:"))
		if !strings.HasPrefix(database, "sqlite:/") || !strings.Contains(volume, `"`+dir+`"`) {
			t.Errorf("HOOKD_DATABASE=%s, VOLUME %s: the embedded store must live in the volume", database, volume)
		}
	})

	t.Run("Dockerfile/Context", func(t *testing.T) {
		ignore := readIgnore(t, "Dockerfile.dockerignore")
		for _, p := range []string{"hookd-data/dev-credentials.json", "hookd-data/hookd.db", "cmd/hookd/hookd-data/hookd.db"} {
			if !ignore.excludes(p) {
				t.Errorf("the build context includes %s: `serve --dev` keeps credentials there", p)
			}
		}
		for _, p := range buildInputs(t) {
			if ignore.excludes(p) {
				t.Errorf("the build context leaves out %s, which the build needs", p)
			}
		}
	})

	unit := parseUnit(t, "hookd.service")

	t.Run("Unit/Settings", func(t *testing.T) {
		for key, want := range map[string]string{
			"EnvironmentFile": "/etc/hookd/hookd.env",
			"ExecStart":       "/usr/local/bin/hookd serve",
			"StateDirectory":  "hookd",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
			"KillSignal":      "SIGTERM",
			"Restart":         "on-failure",
		} {
			if got := unit["Service"][key]; got != want {
				t.Errorf("[Service] %s=%s, want %s", key, got, want)
			}
		}
		switch user := unit["Service"]["User"]; user {
		case "", "root", "0":
			t.Errorf("User=%q: hookd must run as its own user", user)
		}
		if db := unit["Service"]["Environment"]; !strings.Contains(db, "HOOKD_DATABASE=sqlite:/var/lib/hookd/") {
			t.Errorf("Environment=%s: the embedded store must live in the StateDirectory", db)
		}
	})

	t.Run("Unit/StopTimeoutAboveGrace", func(t *testing.T) {
		stop := unitSeconds(t, unit["Service"]["TimeoutStopSec"])
		if grace := flagDefault(t, help, "shutdown-grace"); stop <= mustDuration(t, grace)+5*time.Second {
			t.Fatalf("TimeoutStopSec=%s; want it well above --shutdown-grace's %s so that systemd does not kill hookd mid-shutdown", stop, grace)
		}
	})

	t.Run("Unit/Verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not installed (apt-get install systemd): the unit was not verified")
		}
		// verify checks that ExecStart's program exists: point it at the
		// binary just built.
		raw, _ := os.ReadFile("hookd.service")
		copied := filepath.Join(t.TempDir(), "hookd.service")
		os.WriteFile(copied, bytes.ReplaceAll(raw, []byte("/usr/local/bin/hookd"), []byte(bin)), 0o644)
		out, err := exec.Command(analyze, "verify", "--man=no", copied).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		// Exposure on systemd's 0–10 scale; 2.0 is "OK". Older systemd
		// cannot assess a unit file offline.
		out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", copied).CombinedOutput()
		switch {
		case bytes.Contains(out, []byte("unrecognized option")):
			t.Logf("this systemd-analyze cannot assess units offline; hardening not scored")
		case err != nil:
			t.Fatalf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
		}
	})

	t.Run("EnvExample/Defaults", func(t *testing.T) {
		for _, s := range readEnvExample(t) {
			name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.name, "HOOKD_"), "_", "-"))
			if !strings.Contains(help, "\n  -"+name+" ") && !strings.Contains(help, "\n  -"+name+"\n") {
				t.Errorf("%s is not a setting of hookd serve (no --%s)", s.name, name)
				continue
			}
			if !s.commented || s.name == "HOOKD_DATABASE" { // the unit's own value, not the binary's
				continue
			}
			want := flagDefault(t, help, name)
			if want == "" && (s.value == "false" || s.value == "" || s.value == "0") {
				continue // flag prints no default for a zero value
			}
			if s.value != want {
				t.Errorf("#%s=%s, but the default is %q", s.name, s.value, want)
			}
		}
	})

	t.Run("EnvExample/ServeStopsOnSIGTERM", func(t *testing.T) {
		// Every value of the example, uncommented, with the required ones
		// filled: hookd must start, serve, and exit 0 on SIGTERM within the
		// unit's TimeoutStopSec, which is what systemd waits for.
		env := os.Environ()
		for _, s := range readEnvExample(t) {
			env = append(env, s.name+"="+s.value)
		}
		dir := t.TempDir()
		env = append(env,
			"HOOKD_ADMIN_TOKEN=admin-token-0123456789",
			"HOOKD_SECRET_KEY="+base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"HOOKD_LISTEN=127.0.0.1:0",
			"HOOKD_DATABASE=sqlite:"+filepath.Join(dir, "hookd.db"),
			"HOOKD_LOG_FORMAT=json")
		cmd := exec.Command(bin, "serve")
		cmd.Env, cmd.Dir = env, dir
		var logs syncBuffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer cmd.Process.Kill()

		url := waitServing(t, &logs, exited)
		resp, err := http.Get(url + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /readyz = %v, %v\n%s", resp, err, logs.String())
		}
		resp.Body.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		stop := unitSeconds(t, unit["Service"]["TimeoutStopSec"])
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("hookd serve after SIGTERM: %v, want exit 0\n%s", err, logs.String())
			}
		case <-time.After(stop):
			t.Fatalf("hookd serve still running %s after SIGTERM\n%s", stop, logs.String())
		}
	})
}

// dockerfile is a Dockerfile split into stages of instructions.
type dockerfile struct{ stages []*stage }

type stage struct {
	from         string
	instructions [][2]string // keyword, arguments
}

func (s *stage) last(keyword string) string {
	v := ""
	for _, in := range s.instructions {
		if in[0] == keyword {
			v = in[1]
		}
	}
	return v
}

func (s *stage) has(keyword, part string) bool {
	for _, in := range s.instructions {
		if in[0] == keyword && strings.Contains(in[1], part) {
			return true
		}
	}
	return false
}

// env reads the stage's ENV instructions (the KEY=VALUE form).
func (s *stage) env() map[string]string {
	m := map[string]string{}
	for _, in := range s.instructions {
		if in[0] == "ENV" {
			for _, kv := range strings.Fields(in[1]) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					m[k] = v
				}
			}
		}
	}
	return m
}

func parseDockerfile(t *testing.T, name string) *dockerfile {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{}
	var line string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || (text == "" && line == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		keyword, args, _ := strings.Cut(line, " ")
		keyword, args, line = strings.ToUpper(keyword), strings.TrimSpace(args), ""
		if keyword == "FROM" {
			from, _, _ := strings.Cut(args, " ")
			df.stages = append(df.stages, &stage{from: from})
			continue
		}
		if len(df.stages) == 0 {
			t.Fatalf("%s: %s before FROM", name, keyword)
		}
		st := df.stages[len(df.stages)-1]
		st.instructions = append(st.instructions, [2]string{keyword, args})
	}
	if len(df.stages) < 2 {
		t.Fatalf("%s: want a build stage and a runtime stage, got %d stages", name, len(df.stages))
	}
	return df
}

// buildLikeDockerfile runs the build stage's `go build` line from the
// repository's root with VERSION set and the output in a temporary
// directory. It leaves out -trimpath, which changes only the file paths
// recorded in the binary and would make every build a cold one (minutes
// on two cores) since no cached package applies.
func buildLikeDockerfile(t *testing.T, df *dockerfile) string {
	t.Helper()
	build := df.stages[0]
	var line string
	for _, in := range build.instructions {
		if in[0] == "RUN" && strings.Contains(in[1], "go build") {
			line = in[1]
		}
	}
	for _, part := range []string{"CGO_ENABLED=0 ", " -trimpath ", `-X github.com/hookd-dev/hookd.Version=${VERSION}`, " ./cmd/hookd"} {
		if !strings.Contains(line, part) {
			t.Fatalf("the Dockerfile's build line %q lacks %q", line, part)
		}
	}
	if !build.has("ARG", "VERSION") {
		t.Fatal("the build stage does not declare ARG VERSION")
	}
	bin := filepath.Join(t.TempDir(), "hookd")
	out := regexp.MustCompile(`-o\s+\S+`)
	if !out.MatchString(line) {
		t.Fatalf("the Dockerfile's build line %q has no -o", line)
	}
	line = out.ReplaceAllLiteralString(line, "-o "+bin)
	line = strings.Replace(line, " -trimpath ", " ", 1)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+testVersion,
		"PATH="+filepath.Join(runtime.GOROOT(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return bin
}

func serveHelp(t *testing.T, bin string) string {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	if !bytes.Contains(out, []byte("Usage: hookd serve")) {
		t.Fatalf("hookd serve -h:\n%s", out)
	}
	return string(out)
}

// flagDefault is the default that `hookd serve -h` shows for a flag, or ""
// when it shows none (a zero value).
func flagDefault(t *testing.T, help, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `( \w+)?\n\s+.*\(default "?([^"()]*)"?\)$`)
	m := re.FindStringSubmatch(help)
	if m == nil || m[1] == "" { // bool flags: "(default true with --dev)" is prose
		return ""
	}
	return m[2]
}

// unitSeconds reads a systemd time span of the simple kinds: "30", "30s",
// "2min".
func unitSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	if regexp.MustCompile(`^\d+$`).MatchString(s) {
		s += "s"
	}
	d, err := time.ParseDuration(strings.Replace(s, "min", "m", 1))
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return d
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func goDirective(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast compares "1.26" or "1.26.8-bookworm" tags by major.minor.
func versionAtLeast(tag, want string) bool {
	num := func(s string) (int, int) {
		var major, minor int
		parts := strings.SplitN(strings.SplitN(s, "-", 2)[0], ".", 3)
		if len(parts) < 2 {
			return -1, -1
		}
		json.Unmarshal([]byte(parts[0]), &major)
		json.Unmarshal([]byte(parts[1]), &minor)
		return major, minor
	}
	tm, tn := num(tag)
	wm, wn := num(want)
	return tm > wm || tm == wm && tn >= wn
}

// ignoreFile is a .dockerignore: patterns with *, ? and ** as Docker reads
// them, where a pattern also excludes everything under what it matches.
type ignoreFile []string

func readIgnore(t *testing.T, name string) ignoreFile {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var f ignoreFile
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf("%s: exceptions (!) are not understood by this test", name)
		}
		f = append(f, strings.Trim(line, "/"))
	}
	return f
}

func (f ignoreFile) excludes(p string) bool {
	elems := strings.Split(p, "/")
	for _, pat := range f {
		for n := 1; n <= len(elems); n++ {
			if matchElems(strings.Split(pat, "/"), elems[:n]) {
				return true
			}
		}
	}
	return false
}

func matchElems(pat, elems []string) bool {
	switch {
	case len(pat) == 0:
		return len(elems) == 0
	case pat[0] == "**":
		for i := 0; i <= len(elems); i++ {
			if matchElems(pat[1:], elems[i:]) {
				return true
			}
		}
		return false
	case len(elems) == 0:
		return false
	}
	ok, _ := path.Match(pat[0], elems[0])
	return ok && matchElems(pat[1:], elems[1:])
}

// buildInputs lists, relative to the repository's root, the files the
// image's build reads: go.mod, go.sum, and the Go and embedded files of
// every package of the module that cmd/hookd imports.
func buildInputs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/hookd")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, _ := filepath.Abs("..")
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir                 string
			Module              *struct{ Path string }
			GoFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/hookd-dev/hookd" {
			continue
		}
		rel, _ := filepath.Rel(root, p.Dir)
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return inputs
}

// parseUnit reads a systemd unit into section → key → value; a key given
// twice keeps the last value, except Environment, whose values are joined.
func parseUnit(t *testing.T, name string) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]map[string]string{}
	var section string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			unit[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read %q", name, line)
			}
			if k == "Environment" && unit[section][k] != "" {
				v = unit[section][k] + " " + v
			}
			unit[section][k] = v
		}
	}
	return unit
}

type envSetting struct {
	name, value string
	commented   bool // a default shown for reference
}

// readEnvExample reads hookd.env.example's settings, commented or not.
func readEnvExample(t *testing.T) []envSetting {
	t.Helper()
	raw, err := os.ReadFile("hookd.env.example")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`^(#?)(HOOKD_[A-Z_]+)=(.*)$`)
	var out []envSetting
	for line := range strings.Lines(string(raw)) {
		if m := setting.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			out = append(out, envSetting{name: m[2], value: m[3], commented: m[1] == "#"})
		}
	}
	if len(out) == 0 {
		t.Fatal("hookd.env.example sets nothing")
	}
	return out
}

// waitServing waits for serve's "hookd serving" log line and returns its URL.
func waitServing(t *testing.T, logs *syncBuffer, exited chan error) string {
	t.Helper()
	serving := regexp.MustCompile(`"msg":"hookd serving","url":"(http://[^"]+)"`)
	deadline := time.After(15 * time.Second)
	for {
		if m := serving.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-exited:
			t.Fatalf("hookd serve exited (%v) before serving:\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("hookd serve did not log %q within 15s:\n%s", "hookd serving", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
