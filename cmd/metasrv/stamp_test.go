package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stampFlag is one -X main.NAME=VALUE of an -ldflags string.
var stampFlag = regexp.MustCompile(`-X\s+main\.(\w+)=`)

// taskfileLDFlags is the LDFLAGS variable of Taskfile.yml, the flags
// `task build` stamps the binary with, with its template variables
// replaced by version and commit.
func taskfileLDFlags(version, commit string) (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Taskfile.yml"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^\s*LDFLAGS:\s*(.+)$`).FindSubmatch(b)
	if m == nil {
		return "", os.ErrNotExist
	}
	return strings.NewReplacer("{{.VERSION}}", version, "{{.COMMIT}}", commit).Replace(strings.TrimSpace(string(m[1]))), nil
}

// packageStrings lists the package-level string variables of package main,
// the only ones -X can set (it ignores any other name silently).
func packageStrings(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]bool{}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					isString := false
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						isString = true
					} else if vs.Type == nil && i < len(vs.Values) {
						lit, ok := vs.Values[i].(*ast.BasicLit)
						isString = ok && lit.Kind == token.STRING
					}
					if isString {
						out[name.Name] = true
					}
				}
			}
		}
	}
	return out
}

// Every -X main.NAME that `task build` and the Docker image stamp names a
// string variable of package main, and both stamp the version and the
// commit. (TestVersion checks the Taskfile's flags reach the binary: the
// test binary is built with them.)
func TestBuildStampsNameRealVariables(t *testing.T) {
	t.Parallel()
	vars := packageStrings(t)
	require.True(t, vars["version"] && vars["commit"], "package main declares version and commit: %v", vars)

	task, err := taskfileLDFlags("v", "c")
	require.NoError(t, err)
	docker, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	require.NoError(t, err)
	for name, flags := range map[string]string{"Taskfile.yml": task, "deploy/Dockerfile": string(docker)} {
		var stamped []string
		for _, m := range stampFlag.FindAllStringSubmatch(flags, -1) {
			require.True(t, vars[m[1]], "%s stamps main.%s, which package main does not declare", name, m[1])
			stamped = append(stamped, m[1])
		}
		require.ElementsMatch(t, []string{"version", "commit"}, stamped, name)
	}
}
