package projectorcmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// usageError is a mistake in the command line or the environment: the program exits with ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// flagSet is a flag.FlagSet whose flags may take their value from an environment variable: a flag
// given on the command line wins, then the variable when it is set and not empty, then the flag's
// default. The defaults that -h prints are the built-in ones, never a variable's value (a database URL
// holds a password).
type flagSet struct {
	fs     *flag.FlagSet
	getenv func(string) string
	// envs maps a flag's name to its environment variable.
	envs map[string]string
	// secret marks flags whose value must never be quoted in an error.
	secret map[string]bool
}

func newFlagSet(name, synopsis string, getenv func(string) string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flagSet{fs: fs, getenv: getenv, envs: map[string]string{}, secret: map[string]bool{}}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: projector %s\n\nflags (a flag given wins over its environment variable):\n", synopsis)
		fs.PrintDefaults()
	}
	return f
}

// withEnv adds the variable's name to a flag's usage and records it.
func (f *flagSet) withEnv(name, env, usage string) string {
	if env == "" {
		return usage
	}
	f.envs[name] = env
	return usage + " (env " + env + ")"
}

func (f *flagSet) String(p *string, name, env, def, usage string) {
	f.fs.StringVar(p, name, def, f.withEnv(name, env, usage))
}

// Secret is String for a value that must never appear in output: a database URL.
func (f *flagSet) Secret(p *string, name, env, usage string) {
	f.secret[name] = true
	f.fs.StringVar(p, name, "", f.withEnv(name, env, usage))
}

func (f *flagSet) Int(p *int, name, env string, def int, usage string) {
	f.fs.IntVar(p, name, def, f.withEnv(name, env, usage))
}

func (f *flagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, f.withEnv(name, env, usage))
}

func (f *flagSet) Bool(p *bool, name, env string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, f.withEnv(name, env, usage))
}

// errHelp: -h or -help was given; the usage was printed.
var errHelp = flag.ErrHelp

// Parse parses args, then applies the environment variables of the flags that were not given. It
// returns errHelp for -h, a *usageError otherwise.
func (f *flagSet) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		// The flag package printed the error and the usage.
		return &silentError{code: ExitUsage}
	}
	if f.fs.NArg() > 0 {
		return usagef("unexpected argument %q", f.fs.Arg(0))
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var errs []string
	f.fs.VisitAll(func(fl *flag.Flag) {
		env := f.envs[fl.Name]
		if env == "" || given[fl.Name] {
			return
		}
		v := f.getenv(env)
		if v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			if f.secret[fl.Name] {
				errs = append(errs, fmt.Sprintf("%s: invalid value", env))
			} else {
				errs = append(errs, fmt.Sprintf("%s: invalid value %q for -%s", env, v, fl.Name))
			}
		}
	})
	if len(errs) > 0 {
		return &usageError{msg: strings.Join(errs, "; ")}
	}
	return nil
}

// source names where a flag's value came from, for messages: "-name or ENV".
func (f *flagSet) source(name string) string {
	if env := f.envs[name]; env != "" {
		return "-" + name + " or " + env
	}
	return "-" + name
}
