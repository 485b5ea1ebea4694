//go:build tools

// Package tools keeps FerretDB's server command and its dependencies in go.mod.
package tools

import (
	_ "github.com/FerretDB/FerretDB/cmd/ferretdb"
)
