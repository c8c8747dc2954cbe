module github.com/tierstore/tierstore/tools

go 1.26.0

require golang.org/x/mod v0.38.0

require golang.org/x/tools v0.48.0 // indirect
