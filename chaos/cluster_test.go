//go:build chaos

package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cluster is a throwaway PostgreSQL cluster of one test: initdb into a
// temporary directory, trust auth, listening on a free loopback port only.
// The machine's shared PostgreSQL is never touched. As root the server
// runs as the postgres OS user (initdb refuses root).
type cluster struct {
	bin, dir, data string
	port           int
	asPostgres     bool
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	initdb := findPGBin(t, "initdb")
	dir, err := os.MkdirTemp("", "postcall-chaos-pg-")
	require.NoError(t, err)
	c := &cluster{bin: filepath.Dir(initdb), dir: dir, data: filepath.Join(dir, "data")}
	t.Cleanup(func() {
		_ = c.command("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root: initdb needs the postgres OS user")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		c.asPostgres = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.port = ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	c.run(t, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	c.start(t)
	return c
}

// findPGBin finds a PostgreSQL server program, newest major version first.
func findPGBin(t *testing.T, name string) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(found[i]))), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(found[j]))), 64)
		return vi > vj
	})
	if len(found) > 0 {
		return found[0]
	}
	path, err := exec.LookPath(name)
	require.NoError(t, err, "no PostgreSQL server programs (%s) installed", name)
	return path
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd
}

func (c *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := c.command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
}

func (c *cluster) options() string {
	return fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=100", c.port, c.dir)
}

func (c *cluster) start(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data, "-l", filepath.Join(c.dir, "server.log"), "-o", c.options(), "-w", "-t", "60", "start")
}

// stop shuts the server down: "fast" (sessions terminated, a clean
// shutdown) or "immediate" (like a crash: recovery at the next start).
func (c *cluster) stop(t *testing.T, mode string) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "60", "stop")
}

func (c *cluster) restart(t *testing.T, mode string) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data, "-l", filepath.Join(c.dir, "server.log"), "-o", c.options(), "-m", mode, "-w", "-t", "60", "restart")
}

// URL is a database of the cluster (created by `postcall migrate`).
func (c *cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}
