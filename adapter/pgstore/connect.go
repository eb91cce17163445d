package pgstore

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
)

// Defaults of ConnectConfig.
const (
	// ConnectPortDefault is the PostgreSQL port NewPool uses when ConnectConfig.Port is zero.
	ConnectPortDefault uint16 = 5432
	// ConnectTimeoutDefault bounds each connection attempt (dial, TLS, authentication) by default.
	ConnectTimeoutDefault = 10 * time.Second
	// ConnectMaxConnsDefault is the default size of the pool.
	ConnectMaxConnsDefault int32 = 10
	// ConnectApplicationNameDefault is the default application_name of the connections.
	ConnectApplicationNameDefault = "userstore"
)

// ConnectConfig describes how NewPool reaches PostgreSQL, setting by setting. There is deliberately
// no connection-string field: the password comes from PasswordFile or PasswordFunc, asked for every
// new connection (so a rotated secret takes effect without a restart), and no DSN holding it ever
// exists. NewPool does not read the PG* environment variables, ~/.pgpass or a service file: what is
// not set here takes the default given in the field's documentation.
type ConnectConfig struct {
	// Host is a host name, an IP address, or the absolute path of the directory of a unix-domain
	// socket. Required; one host only.
	Host string

	// Port is the server's TCP port (for a unix socket, the port in the socket's file name).
	// Default: ConnectPortDefault (5432).
	Port uint16

	// Database is the database to connect to. Required.
	Database string

	// User is the role to log in as (for a pgstore.Store: userstore_app or a member of it). Required.
	User string

	// PasswordFile is the path of a file that holds the password — a mounted secret, say. It is read
	// for every new connection; one trailing line break is not part of the password. At most one of
	// PasswordFile and PasswordFunc may be set. Default: none.
	PasswordFile string

	// PasswordFunc returns the password; it is called for every new connection, with that connection's
	// context. An error from it fails the connection attempt (NewPool returns an error matching
	// userstore.ErrUnavailable that wraps it). Default: none — with neither PasswordFile nor
	// PasswordFunc the connection offers no password (peer, trust or certificate authentication).
	PasswordFunc func(ctx context.Context) (string, error)

	// TLSConfig is the TLS configuration of the connections; NewPool uses a clone, and fills
	// ServerName with Host when it is empty. TLS is then required: a server that does not offer it is
	// refused.
	//
	// Default (nil): TLS is required and verified against the system's roots with Host as the server
	// name — unless Host is a unix socket or a loopback address (localhost, 127.0.0.0/8, ::1), which
	// connect without TLS, or Insecure is set.
	TLSConfig *tls.Config

	// Insecure allows a connection without TLS to a host that is not a loopback address, for
	// networks that protect the traffic otherwise. It cannot be combined with TLSConfig. Even then
	// the password is never sent in clear text: the server must authenticate with SCRAM-SHA-256 or
	// MD5 (pgx's require_auth "!password"). Default: false.
	Insecure bool

	// ApplicationName is the application_name of the connections, as pg_stat_activity shows it.
	// Default: ConnectApplicationNameDefault ("userstore").
	ApplicationName string

	// MaxConns is the size of the pool. Default: ConnectMaxConnsDefault (10).
	MaxConns int32

	// ConnectTimeout bounds each connection attempt, from dialling to the end of authentication.
	// Default: ConnectTimeoutDefault (10s).
	ConnectTimeout time.Duration

	// PgBouncer declares that the connections go through PgBouncer in transaction pooling mode (or a
	// pooler like it): the pool then runs every statement in pgx's QueryExecModeExec — one round trip
	// with an unnamed statement, no prepared statement kept on a server connection that the pooler
	// may hand to another client. The store needs no session state, so nothing else changes.
	// Default: false (pgx's default mode, QueryExecModeCacheStatement).
	PgBouncer bool
}

// WithDefaults returns a copy of the config with every zero field set to its default. c may be nil.
func (c *ConnectConfig) WithDefaults() *ConnectConfig {
	out := ConnectConfig{}
	if c != nil {
		out = *c
	}
	out.Port = cmp.Or(out.Port, ConnectPortDefault)
	out.ConnectTimeout = cmp.Or(out.ConnectTimeout, ConnectTimeoutDefault)
	out.MaxConns = cmp.Or(out.MaxConns, ConnectMaxConnsDefault)
	out.ApplicationName = cmp.Or(out.ApplicationName, ConnectApplicationNameDefault)
	return &out
}

// validate checks the settings; each error is a *userstore.ValidationError naming the field.
func (c *ConnectConfig) validate() error {
	if c == nil {
		return &userstore.ValidationError{Field: "connect_config", Reason: "is required"}
	}
	invalid := func(field, reason string) error { return &userstore.ValidationError{Field: field, Reason: reason} }
	switch {
	case c.Host == "":
		return invalid("host", "is required")
	case strings.ContainsAny(c.Host, ",\x00") || strings.TrimSpace(c.Host) != c.Host:
		return invalid("host", "must be one host name, IP address or socket directory")
	case strings.HasPrefix(c.Host, ".") || strings.HasPrefix(c.Host, "["):
		return invalid("host", "must be a host name, an IP address without brackets or an absolute socket directory")
	case c.Database == "":
		return invalid("database", "is required")
	case strings.ContainsRune(c.Database, 0):
		return invalid("database", "must not contain a NUL byte")
	case c.User == "":
		return invalid("user", "is required")
	case strings.ContainsRune(c.User, 0):
		return invalid("user", "must not contain a NUL byte")
	case c.PasswordFile != "" && c.PasswordFunc != nil:
		return invalid("password_file", "must not be set together with password_func")
	case c.TLSConfig != nil && c.Insecure:
		return invalid("insecure", "must not be set together with tls_config")
	case c.TLSConfig != nil && connectIsSocket(c.Host):
		return invalid("tls_config", "does not apply to a unix socket")
	case strings.ContainsRune(c.ApplicationName, 0):
		return invalid("application_name", "must not contain a NUL byte")
	case len(c.ApplicationName) > 63:
		return invalid("application_name", "must not exceed 63 bytes")
	case c.MaxConns < 0:
		return invalid("max_conns", "must not be negative")
	case c.ConnectTimeout < 0:
		return invalid("connect_timeout", "must not be negative")
	}
	return nil
}

// NewPool opens a pool of connections to PostgreSQL from cfg, checks that a connection can be made
// (one connection is opened and pinged — nothing else is sent) and returns it, ready for New. The
// caller closes the pool.
//
// The errors are the library's own and carry neither the password, the password file's content nor
// a connection string: invalid settings are a *userstore.ValidationError naming the field (nothing is
// dialled); a server that cannot be reached, refuses the login (wrong password, unknown database, too
// many connections), or fails the TLS handshake matches userstore.ErrUnavailable, and ctx's error
// when ctx ended. pgx's error types are never reachable from them.
func NewPool(ctx context.Context, cfg *ConnectConfig) (*pgxpool.Pool, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	pcfg, err := connectPoolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, connectTranslate(ctx, cfg, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectTranslate(ctx, cfg, err)
	}
	return pool, nil
}

// connectBaseConnString holds no value of the caller's: pgx insists that a pool configuration come
// from its parser, and NewPool then sets every field itself. Its explicit settings keep the parser
// from applying the PG* environment variables to them, from opening certificate files (sslmode) and
// from looking up the OS user; passfile points at the null device so that no ~/.pgpass is read.
var connectBaseConnString = "host=/nonexistent port=5432 dbname=userstore user=userstore sslmode=disable " +
	"target_session_attrs=any channel_binding=prefer passfile=" + os.DevNull

// connectPoolConfig builds the pgxpool configuration of cfg (validated, with defaults).
func connectPoolConfig(cfg *ConnectConfig) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(connectBaseConnString)
	if err != nil {
		// Only the environment can make the constant string fail (PGSERVICE naming a missing
		// service, an invalid PGREQUIREAUTH, …). The parser's error is not kept: it is pgx's.
		return nil, &userstore.ValidationError{Field: "environment", Reason: "pgx cannot parse its base configuration; check the PG* environment variables"}
	}
	cc := pcfg.ConnConfig
	cc.Host = cfg.Host
	cc.Port = cfg.Port
	cc.Database = cfg.Database
	cc.User = cfg.User
	cc.Password = ""
	cc.Fallbacks = nil
	cc.ConnectTimeout = cfg.ConnectTimeout
	cc.KerberosSrvName, cc.KerberosSpn = "", ""
	cc.ValidateConnect = nil
	cc.SSLNegotiation = ""
	cc.MinProtocolVersion, cc.MaxProtocolVersion = "3.0", "3.0" // pgx's defaults, whatever the environment says
	cc.ChannelBinding = "prefer"
	// Never send the password in clear text: the server must use SCRAM or MD5 (or none).
	cc.RequireAuth = "!password"
	cc.RuntimeParams = map[string]string{"application_name": cfg.ApplicationName}
	cc.TLSConfig = connectTLS(cfg)
	if cfg.PgBouncer {
		cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	} else {
		cc.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	}
	pcfg.MaxConns = cfg.MaxConns
	pcfg.MinConns = 0
	pcfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		password, err := connectPassword(ctx, cfg)
		if err != nil {
			return err
		}
		cc.Password = password
		return nil
	}
	return pcfg, nil
}

// connectTLS returns the TLS configuration of cfg: its own (cloned, with a server name), the
// verified default for a remote host, or nil for a socket, a loopback host or Insecure.
func connectTLS(cfg *ConnectConfig) *tls.Config {
	if cfg.TLSConfig != nil {
		t := cfg.TLSConfig.Clone()
		if t.ServerName == "" {
			t.ServerName = cfg.Host
		}
		return t
	}
	if cfg.Insecure || connectIsSocket(cfg.Host) || connectIsLoopback(cfg.Host) {
		return nil
	}
	return &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
}

// connectIsSocket reports whether host names a unix socket directory (as pgconn decides it).
func connectIsSocket(host string) bool { return strings.HasPrefix(host, "/") }

func connectIsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// connectSourceError is a failure of the password source, already in the library's words: it
// passes connectTranslate unchanged.
type connectSourceError struct{ err error }

func (e *connectSourceError) Error() string { return e.err.Error() }
func (e *connectSourceError) Unwrap() error { return e.err }

// connectPassword fetches the password for one new connection.
func connectPassword(ctx context.Context, cfg *ConnectConfig) (string, error) {
	switch {
	case cfg.PasswordFunc != nil:
		password, err := cfg.PasswordFunc(ctx)
		if err != nil {
			return "", &connectSourceError{fmt.Errorf("pgstore: connect: ConnectConfig.PasswordFunc: %w: %w", userstore.ErrUnavailable, err)}
		}
		if password == "" {
			return "", &connectSourceError{fmt.Errorf("pgstore: connect: ConnectConfig.PasswordFunc returned an empty password: %w", userstore.ErrUnavailable)}
		}
		return password, nil
	case cfg.PasswordFile != "":
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			// The reason only (no such file, permission denied, is a directory): never any content.
			reason := "unreadable"
			var pathErr *os.PathError
			if errors.As(err, &pathErr) {
				reason = pathErr.Err.Error()
			}
			return "", &connectSourceError{fmt.Errorf("pgstore: connect: read ConnectConfig.PasswordFile %q: %w: %s", cfg.PasswordFile, userstore.ErrUnavailable, reason)}
		}
		password := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if password == "" {
			return "", &connectSourceError{fmt.Errorf("pgstore: connect: ConnectConfig.PasswordFile %q is empty: %w", cfg.PasswordFile, userstore.ErrUnavailable)}
		}
		return password, nil
	}
	return "", nil
}

// connectTranslate turns an error of opening or pinging a pool into the library's: an error matching
// userstore.ErrUnavailable (and ctx's error when ctx ended) that names the server and a classified
// reason. The driver's error is never wrapped — pgconn's ConnectError carries the whole connection
// configuration, password included — and its text is never quoted: the server's message, a TLS
// error or a resolver's error may repeat what the caller configured.
func connectTranslate(ctx context.Context, cfg *ConnectConfig, err error) error {
	var source *connectSourceError
	if errors.As(err, &source) {
		return source.err
	}
	where := fmt.Sprintf("pgstore: connect to %s as %q, database %q", connectAddr(cfg), cfg.User, cfg.Database)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w: %w", where, userstore.ErrUnavailable, ctxErr)
	}
	return fmt.Errorf("%s: %w: %s", where, userstore.ErrUnavailable, connectReason(err))
}

func connectAddr(cfg *ConnectConfig) string {
	if connectIsSocket(cfg.Host) {
		return fmt.Sprintf("unix socket %s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}

// connectReason classifies a connection failure, in words of the library's.
func connectReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return "the server refused the login (SQLSTATE " + pgErr.Code + ")"
		case "3D000":
			return "the database does not exist (SQLSTATE 3D000)"
		case "53300":
			return "too many connections (SQLSTATE 53300)"
		case "57P03":
			return "the server is starting up or shutting down (SQLSTATE 57P03)"
		}
		return "the server refused the connection (SQLSTATE " + pgErr.Code + ")"
	}
	var (
		dnsErr     *net.DNSError
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENOENT):
		return "no socket at that path"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "the server closed the connection"
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return "the server's TLS certificate failed verification"
	case errors.As(err, &recordErr), errors.As(err, &alertErr):
		return "the TLS handshake failed"
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return "network error"
	}
	// pgconn's remaining failures (a server that does not offer TLS, a protocol error, an
	// authentication method that ConnectConfig does not allow) have no type to tell them by.
	return "connection failed (check the TLS and authentication settings of client and server)"
}
