# proxied-types.awk - the table types that the proxy: entries of a Postfix
# table list name, one a line (packaging/postinst feeds it the expanded
# proxy_read_maps and proxy_write_maps of each instance).
#
# Entries are split at commas and blanks outside braces, as Postfix splits
# such lists; only entries that start with proxy: count (proxymap ignores
# the others). "proxy:proxy:" prefixes are stripped; the members of
# unionmap:{...}, pipemap:{...} and randmap:{...} are tables too, proxied or
# not, and are read the same way. Braces of other types (inline:{...},
# static:{...}) hold data, not tables.

function emit(t,   i, ty, rest) {
    while (substr(t, 1, 6) == "proxy:") t = substr(t, 7)
    i = index(t, ":")
    if (i <= 1) return
    ty = substr(t, 1, i - 1)
    if (ty !~ /^[A-Za-z0-9_]+$/) return
    print ty
    rest = substr(t, i + 1)
    if ((ty == "unionmap" || ty == "pipemap" || ty == "randmap") &&
        substr(rest, 1, 1) == "{" && substr(rest, length(rest), 1) == "}")
        members(substr(rest, 2, length(rest) - 2), 1)
}

# Split s at commas and blanks outside braces; at the top (inner = 0) only
# proxy: entries count.
function members(s, inner,   i, c, depth, cur) {
    depth = 0
    cur = ""
    for (i = 1; i <= length(s) + 1; i++) {
        c = (i <= length(s)) ? substr(s, i, 1) : " "
        if (c == "{") depth++
        if (c == "}") depth--
        if (depth <= 0 && (c == "," || c == " " || c == "\t")) {
            if (cur != "" && (inner || substr(cur, 1, 6) == "proxy:")) emit(cur)
            cur = ""
            continue
        }
        cur = cur c
    }
}

{ members($0, 0) }
