// Command modproxy writes a file-based Go module proxy (GOPROXY=file://DIR)
// holding the modules of this repository at one version, built from the
// working tree with golang.org/x/mod/zip: what `go get` would download
// after a release is tagged. scripts/outside-module.sh uses it to build a
// consumer's module against the modules exactly as they would be
// published.
//
//	go run ./tools/modproxy -version v0.1.0 -out /tmp/proxy . adapters/scsstore
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	version := flag.String("version", "", "the version to publish the modules at, e.g. v0.1.0")
	out := flag.String("out", "", "the proxy directory to write")
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: modproxy -version vX.Y.Z -out DIR MODULE_DIR...")
		os.Exit(2)
	}
	for _, dir := range flag.Args() {
		path, err := publish(*out, dir, *version)
		if err != nil {
			fmt.Fprintf(os.Stderr, "modproxy: %s: %v\n", dir, err)
			os.Exit(1)
		}
		fmt.Printf("%s@%s\n", path, *version)
	}
}

// publish writes dir's module at version into the proxy at out, and
// returns the module's path.
func publish(out, dir, version string) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return "", fmt.Errorf("no module path in go.mod")
	}
	mv := module.Version{Path: path, Version: version}
	if err := module.Check(path, version); err != nil {
		return "", err
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	at := filepath.Join(out, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return "", err
	}
	z, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		return "", err
	}
	// CreateFromDir leaves out nested modules, vendor directories and
	// version-control metadata, as the go command's own zips do.
	if err := zip.CreateFromDir(z, mv, dir); err != nil {
		z.Close()
		return "", err
	}
	if err := z.Close(); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644); err != nil {
		return "", err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err := os.WriteFile(filepath.Join(at, version+".info"), info, 0o644); err != nil {
		return "", err
	}
	return path, os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644)
}
