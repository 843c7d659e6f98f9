package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo describes this binary.
type buildInfo struct {
	Version   string
	Commit    string
	GoVersion string
	Platform  string
}

// currentBuild reads the -ldflags values, falling back to the VCS revision Go
// stamps into module builds when no commit was given.
func currentBuild() buildInfo {
	b := buildInfo{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if b.Commit == "unknown" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && s.Value != "" {
					b.Commit = s.Value
				}
			}
		}
	}
	return b
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, git commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := currentBuild()
			_, err := fmt.Fprintf(a.stdout, "metasrv %s\ngit commit: %s\ngo: %s %s\n", b.Version, b.Commit, b.GoVersion, b.Platform)
			return err
		},
	}
}
