package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/flows/templates"
)

// templatesCmd helps operators who write their own message templates:
// export writes the shipped ones to start from, check loads a directory as
// serve would and lists every problem.
func (c *cli) templatesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "Export the built-in message templates, or check a directory of your own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("templates needs a subcommand: export or check")}
		},
	}
	export := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the built-in templates to DIR (which must not exist yet), as <lang>/<kind>.<part>.tmpl",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s exists; name a new directory, so that no template of yours is overwritten", dir)
			}
			if err := os.CopyFS(dir, templates.BuiltinFS()); err != nil {
				return fmt.Errorf("export templates: %w", err)
			}
			n := 0
			_ = fs.WalkDir(templates.BuiltinFS(), ".", func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					n++
				}
				return nil
			})
			fmt.Fprintf(c.stdout, "wrote %d templates to %s; keep the files you change, delete the rest, and set templates.dir\n", n, dir)
			return nil
		},
	}
	var lang string
	check := &cobra.Command{
		Use:   "check DIR",
		Short: "Load DIR as vigil serve would, and list every problem and warning",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			set, warnings, err := templates.Load(args[0], lang)
			for _, w := range warnings {
				fmt.Fprintln(c.stdout, "warning:", w)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "ok: languages %v, default %s\n", set.Languages(), set.Default())
			return nil
		},
	}
	check.Flags().StringVar(&lang, "default-language", templates.DefaultLanguage, "the language of templates.default_language")
	cmd.AddCommand(export, check)
	return cmd
}
