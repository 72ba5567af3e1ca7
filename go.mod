module github.com/vigil-auth/vigil

go 1.26
