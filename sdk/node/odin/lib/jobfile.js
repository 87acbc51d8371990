'use strict';
// Reading `id` and `name` directly under a top-level `job:` of the job's YAML
// file, without dependencies: block style, plain, single- and double-quoted
// scalars and comments; nothing more.

const fs = require('fs');

class OdinConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OdinConfigError';
  }
}

function scalar(text) {
  text = text.trim();
  if (text.startsWith('"')) {
    for (let i = 1; i < text.length; i++) {
      if (text[i] === '\\') i++;
      else if (text[i] === '"') return JSON.parse(text.slice(0, i + 1));
    }
    throw new Error(`unterminated quote in ${text}`);
  }
  if (text.startsWith("'")) {
    const match = /^'((?:[^']|'')*)'/.exec(text);
    if (!match) throw new Error(`unterminated quote in ${text}`);
    return match[1].replace(/''/g, "'");
  }
  if (text.startsWith('#')) return '';
  return text.split(' #', 1)[0].trim();
}

function parseJobFields(text) {
  const fields = {};
  let inJob = false;
  let childIndent = -1;
  for (const line of text.split(/\r?\n/)) {
    const stripped = line.trim();
    if (!stripped || stripped.startsWith('#') || stripped === '---') continue;
    const indent = line.length - line.replace(/^ +/, '').length;
    const colon = stripped.indexOf(':');
    const key = colon < 0 ? stripped : stripped.slice(0, colon);
    const rest = colon < 0 ? '' : stripped.slice(colon + 1);
    if (indent === 0) {
      inJob = key === 'job' && colon >= 0 && scalar(rest) === '';
      childIndent = -1;
      continue;
    }
    if (inJob && childIndent < 0) childIndent = indent;
    if (inJob && indent === childIndent && colon >= 0 && (key === 'id' || key === 'name')) {
      fields[key] = scalar(rest);
    }
  }
  return fields;
}

function readJobFile(path) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new OdinConfigError(`odin: cannot read the job file ${JSON.stringify(path)}: ${err.message}`);
  }
  try {
    return parseJobFields(text);
  } catch (err) {
    throw new OdinConfigError(`odin: the job file ${JSON.stringify(path)} is not valid YAML: ${err.message}`);
  }
}

module.exports = { OdinConfigError, parseJobFields, readJobFile };
