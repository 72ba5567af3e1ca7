package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/flows"
)

// devicesCmd administers trusted devices on the configured database.
func (c *cli) devicesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "devices",
		Aliases: []string{"device"},
		Short:   "List and revoke trusted devices directly on the configured database",
		Long: `List and revoke an identity's trusted devices directly on the configured
database. Output is JSON. A revoked device is challenged again at its next
login.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("devices needs a subcommand: list or revoke")}
		},
	}
	list := &cobra.Command{
		Use:   "list IDENTITY_ID",
		Short: "List an identity's devices, revoked ones included, newest first",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				ds, err := svc.Devices(ctx, args[0])
				if err != nil {
					return nil, err
				}
				return map[string]any{"devices": ds}, nil
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke DEVICE_ID",
		Short: "End a device's trust at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				return svc.RevokeDevice(ctx, "", args[0], "admin")
			})
		},
	}
	cmd.AddCommand(list, revoke)
	return cmd
}
