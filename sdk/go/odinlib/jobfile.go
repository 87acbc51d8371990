package odinlib

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// readJobFile reads `id` and `name` directly under a top-level `job:` of the
// YAML file at path. It understands block style, plain, single- and
// double-quoted scalars and comments; nothing more (the standard library has
// no YAML).
func readJobFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return map[string]string{}, fmt.Errorf("odin: cannot read the job file %q: %w", path, err)
	}
	fields, err := parseJobFields(string(data))
	if err != nil {
		return map[string]string{}, fmt.Errorf("odin: the job file %q is not valid YAML: %w", path, err)
	}
	return fields, nil
}

func parseJobFields(text string) (map[string]string, error) {
	fields := map[string]string{}
	inJob, childIndent := false, -1
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		stripped := strings.TrimSpace(line)
		if stripped == "" || strings.HasPrefix(stripped, "#") || stripped == "---" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, rest, colon := strings.Cut(stripped, ":")
		if indent == 0 {
			value, err := scalar(rest)
			inJob, childIndent = key == "job" && colon && err == nil && value == "", -1
			continue
		}
		if inJob && childIndent < 0 {
			childIndent = indent
		}
		if inJob && indent == childIndent && colon && (key == "id" || key == "name") {
			value, err := scalar(rest)
			if err != nil {
				return fields, err
			}
			fields[key] = value
		}
	}
	return fields, nil
}

// scalar is a one-line YAML scalar without its quotes or trailing comment.
func scalar(text string) (string, error) {
	text = strings.TrimSpace(text)
	switch {
	case strings.HasPrefix(text, `"`):
		return doubleQuoted(text)
	case strings.HasPrefix(text, "'"):
		return singleQuoted(text)
	case strings.HasPrefix(text, "#"):
		return "", nil
	}
	if i := strings.Index(text, " #"); i >= 0 {
		text = text[:i]
	}
	return strings.TrimSpace(text), nil
}

func doubleQuoted(text string) (string, error) {
	for i := 1; i < len(text); i++ {
		switch text[i] {
		case '\\':
			i++
		case '"':
			var value string
			err := json.Unmarshal([]byte(text[:i+1]), &value)
			return value, err
		}
	}
	return "", fmt.Errorf("unterminated quote in %q", text)
}

func singleQuoted(text string) (string, error) {
	var out strings.Builder
	for i := 1; i < len(text); i++ {
		if text[i] != '\'' {
			out.WriteByte(text[i])
			continue
		}
		if i+1 < len(text) && text[i+1] == '\'' {
			out.WriteByte('\'')
			i++
			continue
		}
		return out.String(), nil
	}
	return "", fmt.Errorf("unterminated quote in %q", text)
}
