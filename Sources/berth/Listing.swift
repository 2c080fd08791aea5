import BerthClient

/// Go's text/tabwriter as docker configures it for tables (minimum width 10, padding 3,
/// spaces): every tab-terminated cell is padded to its column's width; the last cell of a
/// line is left as it is.
func tabulate(_ text: String, minWidth: Int = 10, padding: Int = 3) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
        $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
    }
    if lines.last == [""] { lines.removeLast() }
    var widths: [Int] = []
    for cells in lines {
        for (j, cell) in cells.dropLast().enumerated() {
            if j == widths.count { widths.append(minWidth) }
            widths[j] = max(widths[j], cell.count + padding)
        }
    }
    var out = ""
    for cells in lines {
        for (j, cell) in cells.enumerated() {
            out += cell
            if j < cells.count - 1 { out += String(repeating: " ", count: widths[j] - cell.count) }
        }
        out += "\n"
    }
    return out
}

/// Prints rows (one JSON object of display fields each) through a `--format`: `table ...`
/// gives a header from `headers` and aligned columns, `json` one JSON object a line, anything
/// else is a template run per row. `defaultTable` is used when no format is given.
func printListing(rows: [JSON], format: String?, defaultTable: String, headers: [String: String],
                  quietField: String? = nil) throws(CLIError) {
    var format = format ?? defaultTable
    if format == "table" { format = defaultTable }
    if format == "json" { format = "{{json .}}" }
    let isTable = format.hasPrefix("table")
    if isTable { format = String(format.dropFirst(5)).trimming(" ") }
    format = format.replacing("\\t", with: "\t").replacing("\\n", with: "\n")
    let template: Template
    do { template = try Template(format) } catch { throw CLIError("template parsing error: \(error)") }
    var out = ""
    do {
        if isTable {
            var header = JSONObject()
            for (k, v) in headers { header[k] = .string(v) }
            let line = try template.render(.object(header))
            out += line + "\n"
        }
        for row in rows { out += try template.render(row) + "\n" }
    } catch {
        throw CLIError("\(error)")
    }
    writeAll(1, isTable ? tabulate(out) : out)
}

/// Docker's `Ellipsis`: at most `max` characters, the last one an ellipsis when cut.
func ellipsis(_ s: String, _ max: Int) -> String {
    s.count <= max ? s : String(s.prefix(max - 1)) + "…"
}

/// The short form of an ID: no `sha256:`, 12 hex digits.
func shortID(_ id: String) -> String {
    let hex = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
    return String(hex.prefix(12))
}

/// Go's `strconv.Quote` for the printable text docker quotes (ps COMMAND).
func goQuote(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}
