# test_cli.sh -- the command-line surface: help, version, unknown commands/options, config files,
# the data x stage grid check, and the stubs of unimplemented commands.
. "$(dirname "$0")/../lib.sh"

check version sh -c "$I2PMAE --version | grep -q '^i2pmae [0-9]'"
check help_lists_commands sh -c "$I2PMAE --help | grep -q extract"
expect_error unknown_command "unknown command 'frobnicate'" "$I2PMAE" frobnicate
