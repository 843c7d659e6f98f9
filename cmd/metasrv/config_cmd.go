package main

import (
	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/config"
)

func newConfigCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration as TOML, passwords masked",
		Long: "Print the configuration start would use (defaults < --config file < METASRV_ environment < flags)\n" +
			"as TOML, with passwords in store_addrs masked. The output is a valid --config file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := a.loadOptions(cmd)
			if err != nil {
				return err
			}
			out, err := config.Render(o)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}
