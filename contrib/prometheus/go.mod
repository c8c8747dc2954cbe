module github.com/tierstore/tierstore/contrib/prometheus

go 1.26.0
