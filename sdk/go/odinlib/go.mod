module github.com/theycallmemac/odin/odin-libraries/go/odinlib

go 1.19
