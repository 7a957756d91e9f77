# shellcheck shell=sh
# Puts the Pyroscope Java agent and its settings onto this Cassandra host, or with the argument
# "uninstall" takes them off again. It runs in the init container of the Cassandra agent
# DaemonSet under busybox sh or dash. The text is the same for every cluster: every input is an
# environment variable, and host path P is reached as $HOST_ROOT$P.
#   HOST_ROOT      where the host paths are mounted (default /host; empty: used as they are)
#   INSTALL_DIR    host directory for the jar and the snippet
#   INCLUDE_FILE   host path of Cassandra's include file (cassandra.in.sh); one whole segment may
#                  be `*`, and then every match is hooked (each installed Cassandra version)
#   ENV_FILE       host path of the Cassandra unit's EnvironmentFile
#   install only:  AGENT_URL, AGENT_SHA256 (empty: not verified), PYROSCOPE_SERVER_ADDRESS,
#                  CLUSTER_NAME
#
# Everything that can be checked is checked before the host changes. New contents are staged in
# a private temporary directory, copied next to their targets and only then renamed into place,
# so a failed run leaves the jar, the snippet, the include file and the env file as they were.
set -eu

# Ranges in case patterns and tr must mean ASCII whatever locale the image has.
LC_ALL=C
export LC_ALL

PROG=install.sh
JAR_NAME=pyroscope.jar
SNIPPET_NAME=cassandra-pyroscope.sh
# A jar found at the jar's path that this script did not put there is kept under this name, and
# uninstall puts it back: easy-db-lab's image bakes its own agent there and loads it itself.
KEPT_NAME=pyroscope.jar.before-gen
INCLUDE_NAME=cassandra.in.sh
BEGIN_MARK='# BEGIN gen-profiling'
END_MARK='# END gen-profiling'
# Put inside the block when install had to add a line break in front of it (the file did not end
# with one), so that uninstall knows to take that byte away again.
JOINED_MARK='# (install.sh added the line break in front of this block)'

# Our own messages go to fd 3 (the real stderr); the tools' stderr goes to a log so that a
# failure can be reported as one line quoting the tool's last complaint.
exec 3>&2
said=0
work=''
log=/dev/null
jar_tmp=''
snippet_tmp=''
env_tmp=''
kept_new=''

usage() {
    # One line; the inputs are environment variables described at the top of this file.
    printf 'usage: %s [install|uninstall]\n' "$PROG" >&3
    said=1
    exit 2
}

say() {
    printf '%s: %s\n' "$PROG" "$*"
}

warn() {
    printf '%s: warning: %s\n' "$PROG" "$*" >&3
}

die() {
    said=1
    printf '%s: error: %s\n' "$PROG" "$*" >&3
    exit 1
}

# The last line a tool wrote to stderr since the log was last emptied, as " (line)".
complaint() {
    if [ -s "$log" ]; then
        printf ' (%s)' "$(tail -n 1 "$log" | tr -d '\r')"
    fi
}

# try MESSAGE COMMAND...: run the command; when it fails, stop with MESSAGE and its complaint.
try() {
    try_what=$1
    shift
    : > "$log"
    if "$@"; then
        return 0
    fi
    die "$try_what$(complaint)"
}

cleanup() {
    rc=$?
    # kept_new is set only until the renames start: before, the jar it keeps is still in place.
    if [ -n "$kept_new" ]; then
        rm -f "$kept_new" || :
    fi
    # Every temporary file made beside a target; once renamed into place they are gone already.
    if [ -n "$work" ] && [ -f "$work/staged" ]; then
        while IFS= read -r t; do
            rm -f "$t" || :
        done < "$work/staged"
    fi
    if [ "$rc" -ne 0 ] && [ -n "$work" ] && [ -s "$work/made" ]; then
        # Directories this run created, deepest first; rmdir leaves any that are not empty.
        sed '1!G;h;$!d' "$work/made" | while IFS= read -r d; do
            rmdir "$d" 2>/dev/null || :
        done
    fi
    if [ "$rc" -ne 0 ] && [ "$said" -eq 0 ]; then
        printf '%s: error: stopped unexpectedly (exit status %s)%s\n' "$PROG" "$rc" \
            "$(complaint)" >&3
    fi
    if [ -n "$work" ]; then
        rm -rf "$work" || :
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- inputs

case $# in
0) action=install ;;
1) action=$1 ;;
*) usage ;;
esac
case $action in
install | uninstall) ;;
*) usage ;;
esac

trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Set but empty means the host's paths are reachable as they are (running on the host itself).
HOST_ROOT=${HOST_ROOT-/host}
INSTALL_DIR=${INSTALL_DIR:-}
INCLUDE_FILE=${INCLUDE_FILE:-}
ENV_FILE=${ENV_FILE:-}
AGENT_URL=${AGENT_URL:-}
AGENT_SHA256=${AGENT_SHA256:-}
PYROSCOPE_SERVER_ADDRESS=${PYROSCOPE_SERVER_ADDRESS:-}
CLUSTER_NAME=${CLUSTER_NAME:-}

need() {
    if [ -z "$2" ]; then
        die "$1 is not set; the DaemonSet passes it to the init container"
    fi
}

# Host paths end up quoted inside the include file, so they keep to a plain character set.
host_path() {
    need "$1" "$2"
    case $2 in
    /*) ;;
    *) die "$1 must be an absolute host path, got '$2'" ;;
    esac
    case $2 in
    *[!A-Za-z0-9._+@/-]*) die "$1 may hold only letters, digits, / and . _ + @ -, got '$2'" ;;
    esac
    normal_path "$1" "$2"
}

# Compared as strings below, so each path has exactly one spelling (as the spec writes it).
normal_path() {
    case $2 in
    /) die "$1 must not be '/'" ;;
    */ | *//* | */./* | */. | */../* | */..)
        die "$1 must be a normalised path (no '//', '.', '..' or trailing '/'), got '$2'"
        ;;
    esac
}

# Env file values are written unquoted (a systemd EnvironmentFile and sh read quotes
# differently), so anything that would need quoting in either is refused.
plain_value() {
    need "$1" "$2"
    case $2 in
    *[!]A-Za-z0-9._:/@+[-]*)
        die "$1 may hold only letters, digits and . _ : / @ + - [ ] (no quoting), got '$2'"
        ;;
    esac
}

host_path INSTALL_DIR "$INSTALL_DIR"
# One whole segment of INCLUDE_FILE may be `*` (every installed version); nothing else is a
# pattern, and the `*` is never the file name itself.
case $INCLUDE_FILE in
*\**\**) die "INCLUDE_FILE may hold at most one '*' segment, got '$INCLUDE_FILE'" ;;
/*/\*/*)
    case $INCLUDE_FILE in
    *[!A-Za-z0-9._+@/*-]*)
        die "INCLUDE_FILE may hold only letters, digits, / and . _ + @ - besides its '*'" \
            "segment, got '$INCLUDE_FILE'"
        ;;
    esac
    normal_path INCLUDE_FILE "$INCLUDE_FILE"
    ;;
*\**)
    die "INCLUDE_FILE may hold '*' only as one whole segment of an absolute path, below its top" \
        "directory and above the file name, got '$INCLUDE_FILE'"
    ;;
*) host_path INCLUDE_FILE "$INCLUDE_FILE" ;;
esac
host_path ENV_FILE "$ENV_FILE"
# The spec keeps the three apart; so does this script, should the ConfigMap be edited by hand.
# Each file gets a block of its own, and nothing but the jar, the snippet and a jar kept from
# before the first install lies in INSTALL_DIR.
case $INCLUDE_FILE in
*/"$INCLUDE_NAME") ;;
*) die "INCLUDE_FILE must name Cassandra's include file, $INCLUDE_NAME, got '$INCLUDE_FILE'" ;;
esac
if [ "$ENV_FILE" = "$INCLUDE_FILE" ]; then
    die "ENV_FILE and INCLUDE_FILE are both '$ENV_FILE'; each file gets a block of its own"
fi
case $ENV_FILE in
*/"$INCLUDE_NAME") die "ENV_FILE must not be named $INCLUDE_NAME, Cassandra's include file, got '$ENV_FILE'" ;;
"$INSTALL_DIR" | "$INSTALL_DIR"/*)
    die "ENV_FILE $ENV_FILE lies inside INSTALL_DIR $INSTALL_DIR, which holds the jar and the snippet"
    ;;
esac
case $INCLUDE_FILE in
"$INSTALL_DIR"/*)
    die "INCLUDE_FILE $INCLUDE_FILE lies inside INSTALL_DIR $INSTALL_DIR, which holds the jar and the snippet"
    ;;
esac
if [ "$action" = install ]; then
    need AGENT_URL "$AGENT_URL"
    case $AGENT_URL in
    http://* | https://*) ;;
    *) die "AGENT_URL must be an http:// or https:// URL, got '$AGENT_URL'" ;;
    esac
    AGENT_SHA256=$(printf '%s' "$AGENT_SHA256" | tr 'A-F' 'a-f')
    case $AGENT_SHA256 in
    *[!0-9a-f]*) die "AGENT_SHA256 must be 64 hexadecimal digits, got '$AGENT_SHA256'" ;;
    esac
    if [ -n "$AGENT_SHA256" ] && [ "${#AGENT_SHA256}" -ne 64 ]; then
        die "AGENT_SHA256 must be 64 hexadecimal digits, got ${#AGENT_SHA256}"
    fi
    plain_value PYROSCOPE_SERVER_ADDRESS "$PYROSCOPE_SERVER_ADDRESS"
    plain_value CLUSTER_NAME "$CLUSTER_NAME"
fi
if [ -n "$HOST_ROOT" ] && [ ! -d "$HOST_ROOT" ]; then
    die "HOST_ROOT $HOST_ROOT is not a directory; is the host file system mounted there?"
fi

here=$(dirname "$0")
snippet_src=$here/$SNIPPET_NAME
dir=$HOST_ROOT$INSTALL_DIR
jar=$dir/$JAR_NAME
snippet=$dir/$SNIPPET_NAME
kept=$dir/$KEPT_NAME

work=$(mktemp -d "${TMPDIR:-/tmp}/install-sh.XXXXXX" 2>/dev/null) ||
    die "cannot create a temporary directory in ${TMPDIR:-/tmp}"
log=$work/log
: > "$log"
exec 2>> "$log"

# ---------------------------------------------------------------- helpers

# present PATH: whether PATH is there, a dangling link included.
present() {
    [ -e "$1" ] || [ -L "$1" ]
}

# inode PATH: the inode number of PATH itself (a link is not followed); nothing when it is missing.
# POSIX find cannot print it, and the names given here are the script's own.
inode() {
    # shellcheck disable=SC2012
    ls -di "$1" 2>/dev/null | awk '{ print $1 }'
}

# head_lines FILE N: the first N lines of FILE, byte for byte (nothing when N is 0).
head_lines() {
    if [ "$2" -gt 0 ]; then
        head -n "$2" "$1"
    fi
}

# find_block FILE NAME: sets blk_begin and blk_end to the line numbers of the markers (0 when
# the file holds no block) and blk_joined to 1 when install added the line break before it.
# A file whose markers do not pair up is left for a person to repair.
find_block() {
    fb_file=$1
    blk_begin=0
    blk_end=0
    blk_joined=0
    if [ ! -f "$fb_file" ]; then
        return 0
    fi
    fb_nb=$(grep -c -x -F -e "$BEGIN_MARK" "$fb_file") || :
    fb_ne=$(grep -c -x -F -e "$END_MARK" "$fb_file") || :
    if [ "$fb_nb" = 0 ] && [ "$fb_ne" = 0 ]; then
        return 0
    fi
    if [ "$fb_nb" != 1 ] || [ "$fb_ne" != 1 ]; then
        die "$2 holds $fb_nb '$BEGIN_MARK' and $fb_ne '$END_MARK' lines instead of one" \
            "pair; repair it by hand"
    fi
    blk_begin=$(grep -n -x -F -e "$BEGIN_MARK" "$fb_file" | cut -d: -f1)
    blk_end=$(grep -n -x -F -e "$END_MARK" "$fb_file" | cut -d: -f1)
    if [ "$blk_end" -le "$blk_begin" ]; then
        die "$2 has '$END_MARK' before '$BEGIN_MARK'; repair it by hand"
    fi
    if sed -n "$((blk_begin + 1)),$((blk_end - 1))p" "$fb_file" |
        grep -q -x -F -e "$JOINED_MARK"; then
        blk_joined=1
    fi
}

# block JOINED BODY: the marked block around the lines of BODY.
block() {
    printf '%s\n' "$BEGIN_MARK"
    if [ "$1" = 1 ]; then
        printf '%s\n' "$JOINED_MARK"
    fi
    printf '%s\n' "$2" "$END_MARK"
}

# with_block FILE OUT NAME BODY: FILE's bytes with the block replaced in place, or appended
# when there is none (a missing FILE counts as empty). Bytes outside the block are copied with
# head and tail, which keep them exactly, including a last line without a line break.
with_block() {
    find_block "$1" "$3"
    if [ "$blk_begin" -gt 0 ]; then
        head_lines "$1" $((blk_begin - 1)) > "$2"
        block "$blk_joined" "$4" >> "$2"
        tail -n "+$((blk_end + 1))" "$1" >> "$2"
    elif [ ! -s "$1" ]; then
        block 0 "$4" > "$2"
    elif [ -z "$(tail -c 1 "$1")" ]; then
        cat "$1" > "$2"
        block 0 "$4" >> "$2"
    else
        cat "$1" > "$2"
        printf '\n' >> "$2"
        block 1 "$4" >> "$2"
    fi
}

# without_block FILE OUT NAME: FILE's bytes without the block, and without the line break
# install put in front of it when the block is still the end of the file.
without_block() {
    find_block "$1" "$3"
    if [ "$blk_begin" -eq 0 ]; then
        cat "$1" > "$2"
        return 0
    fi
    tail -n "+$((blk_end + 1))" "$1" > "$work/after"
    if [ "$blk_joined" = 1 ] && [ ! -s "$work/after" ] && [ "$blk_begin" -gt 1 ]; then
        head_lines "$1" $((blk_begin - 2)) > "$2"
        sed -n "$((blk_begin - 1))p" "$1" | tr -d '\n' >> "$2"
    else
        head_lines "$1" $((blk_begin - 1)) > "$2"
        cat "$work/after" >> "$2"
    fi
}

# resolve PATH: sets rs_path to host path PATH with every symbolic link in it resolved, as the
# host would resolve it. An absolute link target is a host path, so it is looked up under
# $HOST_ROOT and not in this container's root (easy-db-lab's `current` may be such a link).
# Fails after 40 links, like the kernel, so that a loop ends.
resolve() {
    rs_done=''
    rs_todo=${1#/}
    rs_links=0
    while [ -n "$rs_todo" ]; do
        case $rs_todo in
        */*)
            rs_part=${rs_todo%%/*}
            rs_todo=${rs_todo#*/}
            ;;
        *)
            rs_part=$rs_todo
            rs_todo=''
            ;;
        esac
        case $rs_part in
        '' | .) continue ;;
        ..)
            rs_done=${rs_done%/*}
            continue
            ;;
        esac
        if [ -L "$HOST_ROOT$rs_done/$rs_part" ]; then
            rs_links=$((rs_links + 1))
            if [ "$rs_links" -gt 40 ]; then
                return 1
            fi
            rs_target=$(readlink "$HOST_ROOT$rs_done/$rs_part") || return 1
            case $rs_target in
            /*)
                rs_done=''
                rs_target=${rs_target#/}
                ;;
            esac
            rs_todo=$rs_target${rs_todo:+/$rs_todo}
        else
            rs_done=$rs_done/$rs_part
        fi
    done
    rs_path=${rs_done:-/}
}

# find_env_file: sets envfile to the file ENV_FILE leads to on the host (see resolve), so that the
# block goes where the unit reads it and a link stays a link; sets env_lost to why that file
# cannot be reached here, when ENV_FILE is a link whose target lies outside the mounts.
find_env_file() {
    resolve "$ENV_FILE" || die "ENV_FILE $ENV_FILE: too many levels of symbolic links"
    envfile=$HOST_ROOT$rs_path
    env_lost=''
    if [ "$rs_path" = "$ENV_FILE" ]; then
        return 0
    fi
    # The checks made on ENV_FILE above, made again on where its link leads.
    case $rs_path in
    */"$INCLUDE_NAME") die "ENV_FILE $ENV_FILE leads to $rs_path, named like Cassandra's include file; refused" ;;
    "$INSTALL_DIR" | "$INSTALL_DIR"/*)
        die "ENV_FILE $ENV_FILE leads to $rs_path, inside INSTALL_DIR $INSTALL_DIR, which holds the jar" \
            "and the snippet; refused"
        ;;
    esac
    if [ ! -d "$(dirname "$envfile")" ]; then
        env_lost="ENV_FILE $ENV_FILE leads to $rs_path, whose directory is not there (a dangling link, or"
        env_lost="$env_lost outside the directories mounted here: then set cassandra.envFile to $rs_path)"
    fi
}

# shown TEXT: TEXT with every byte but printable ASCII as '?', so that a host's odd file name
# keeps a message on one line and sends nothing to the terminal.
shown() {
    printf '%s' "$1" | tr -c ' -~' '?'
}

# add_include PATH [TOP]: adds host path PATH, resolved, to $work/includes when it exists there
# and is not listed yet: a version reached through a link and through its own name is one file.
# With TOP, PATH is a match of the `*` segment below directory TOP, and a match whose path cannot
# be written safely is skipped with a warning: a copy of a version beside the others must not
# keep them all from being hooked or unhooked. Without, inc_lost says where INCLUDE_FILE's link
# leads when that is not there.
add_include() {
    resolve "$1" || die "$(shown "$1"): too many levels of symbolic links"
    if [ ! -e "$HOST_ROOT$rs_path" ] && [ ! -L "$HOST_ROOT$rs_path" ]; then
        if [ "$rs_path" = "$1" ]; then
            return 0
        fi
        # Through a link, "not found" would send the reader looking for a missing Cassandra.
        ai_lost="include file $(shown "$1") leads to $(shown "$rs_path"), which is not there (a"
        ai_lost="$ai_lost dangling link, or outside the directories mounted here"
        if [ -z "${2-}" ]; then
            inc_lost="$ai_lost: then set cassandra.includeFile to $(shown "$rs_path"))"
            return 0
        fi
        # Inside TOP it is a version without an include file, which its own match passes over.
        case $rs_path in
        "$2"/*) ;;
        *) warn "$ai_lost); skipped" ;;
        esac
        return 0
    fi
    ai_what="include file $(shown "$1")"
    if [ "$rs_path" != "$1" ]; then
        ai_what="$ai_what leads to $(shown "$rs_path"), which"
    fi
    case $rs_path in
    *[!A-Za-z0-9._+@/-]*)
        ai_what="$ai_what holds characters other than letters, digits, / and . _ + @ -"
        if [ -n "${2-}" ]; then
            warn "$ai_what; skipped (rename it if it should be hooked)"
            return 0
        fi
        die "$ai_what"
        ;;
    esac
    # A link on the host must not lead the include block into another file (the env file, say).
    case $rs_path in
    */"$INCLUDE_NAME") ;;
    *) die "include file $(shown "$1") is $rs_path, which is not named $INCLUDE_NAME; refused" ;;
    esac
    if ! grep -q -x -F -e "$rs_path" "$work/includes"; then
        printf '%s\n' "$rs_path" >> "$work/includes"
    fi
}

# find_includes: writes the include files to edit, one host path a line, to $work/includes:
# INCLUDE_FILE itself, or, with a `*` segment, every entry of the directory above it under which
# the rest of the path exists (hidden entries are skipped, as a shell pattern skips them).
find_includes() {
    : > "$work/includes"
    inc_lost=''
    case $INCLUDE_FILE in
    */\*/*)
        fi_dir=${INCLUDE_FILE%%/\*/*}
        fi_rest=${INCLUDE_FILE#*/\*/}
        for fi_entry in "$HOST_ROOT$fi_dir"/*; do
            fi_name=${fi_entry##*/}
            if [ -L "$fi_entry" ]; then
                resolve "$fi_dir/$fi_name" || die "$fi_dir/$fi_name: too many levels of symbolic links"
                if [ ! -e "$HOST_ROOT$rs_path" ]; then
                    warn "$fi_dir/$fi_name leads to $rs_path, which is not there (a dangling link," \
                        "or outside the directories mounted here); skipped"
                    continue
                fi
            fi
            # An empty directory leaves the pattern itself, which add_include does not find.
            add_include "$fi_dir/$fi_name/$fi_rest" "$fi_dir"
        done
        ;;
    *) add_include "$INCLUDE_FILE" ;;
    esac
}

sha256_of() {
    s256=$(sha256sum < "$1") || return 1
    printf '%s' "${s256%% *}"
}

fetch() {
    if command -v curl > /dev/null 2>&1; then
        curl -fsSL -o "$2" "$1"
    else
        wget -q -O "$2" "$1"
    fi
}

copy_into() {
    cat "$1" > "$2"
}

# tmp_beside FILE NAME: sets tb_path to a new empty file in FILE's directory, so that the
# final rename stays within one file system and is atomic.
tmp_beside() {
    : > "$log"
    tb_path=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX") ||
        die "cannot create a temporary file next to $2$(complaint)"
    # Listed at once: a copy into it may still fail, and it must not stay beside the target.
    printf '%s\n' "$tb_path" >> "$work/staged"
}

# make_dir DIR NAME: create DIR and any missing parent, 0755, and note each one so that a
# failed run can remove them again. One that appears meanwhile (another install running at the
# same time) is fine, and not this run's to remove.
make_dir() {
    if [ -d "$1" ]; then
        return 0
    fi
    make_dir "$(dirname "$1")" "$2"
    : > "$log"
    if mkdir -m 0755 "$1"; then
        printf '%s\n' "$1" >> "$work/made"
    elif [ ! -d "$1" ]; then
        die "cannot create directory $2$(complaint)"
    fi
}

# The jar and the snippet are world-readable: Cassandra runs as its own user. A link's own mode
# means nothing, and chmod sets its target's: -L looks at the target too.
fix_mode() {
    if [ -z "$(find -L "$1" -prune -perm 0644)" ]; then
        try "cannot set the mode of $2" chmod 0644 "$1"
        say "$2: mode set to 0644"
    fi
}

# stage_text FILE NEW NAME: sets tb_path to a copy of NEW beside FILE carrying FILE's
# permission bits and owner (cp -p, then new contents), or 0644 for a new file.
stage_text() {
    tmp_beside "$1" "$3"
    if [ -f "$1" ]; then
        try "cannot copy $3" cp -p "$1" "$tb_path"
    else
        try "cannot set the mode of a new $3" chmod 0644 "$tb_path"
    fi
    try "cannot write $3" copy_into "$2" "$tb_path"
}

# stage_includes: a temporary copy beside each include file that changes (see stage_text),
# named in $work/include.N.tmp.
stage_includes() {
    n=0
    while IFS= read -r inc; do
        n=$((n + 1))
        case $(cat "$work/include.$n.state") in
        unchanged | 'no block') continue ;;
        esac
        stage_text "$HOST_ROOT$inc" "$work/include.$n" "$inc"
        printf '%s\n' "$tb_path" > "$work/include.$n.tmp"
    done < "$work/includes"
}

# replace_includes: renames each staged copy into place and reports every include file.
replace_includes() {
    n=0
    while IFS= read -r inc; do
        n=$((n + 1))
        if [ -f "$work/include.$n.tmp" ]; then
            try "cannot replace $inc" mv -f "$(cat "$work/include.$n.tmp")" "$HOST_ROOT$inc"
        fi
        say "$inc: $(cat "$work/include.$n.state")"
    done < "$work/includes"
}

# ---------------------------------------------------------------- install

do_install() {
    if [ ! -f "$snippet_src" ]; then
        die "$SNIPPET_NAME not found next to install.sh (in $here)"
    fi
    find_includes
    if [ ! -s "$work/includes" ]; then
        case $INCLUDE_FILE in
        *\**) die "no include file matches $INCLUDE_FILE on this host; is Cassandra installed here?" ;;
        *)
            if [ -n "$inc_lost" ]; then
                die "$inc_lost"
            fi
            die "include file $INCLUDE_FILE not found on this host; is Cassandra installed here?"
            ;;
        esac
    fi
    while IFS= read -r inc; do
        if [ ! -f "$HOST_ROOT$inc" ]; then
            die "include file $inc is not a regular file"
        fi
        if [ ! -r "$HOST_ROOT$inc" ]; then
            die "include file $inc is not readable"
        fi
    done < "$work/includes"
    if [ -n "$env_lost" ]; then
        die "$env_lost"
    fi
    if [ ! -d "$(dirname "$envfile")" ]; then
        die "directory $(dirname "$ENV_FILE") of ENV_FILE not found on this host"
    fi
    if [ -e "$envfile" ] && [ ! -f "$envfile" ]; then
        die "ENV_FILE $ENV_FILE is not a regular file"
    fi
    if [ -e "$dir" ] && [ ! -d "$dir" ]; then
        die "INSTALL_DIR $INSTALL_DIR exists and is not a directory"
    fi
    if ! command -v curl > /dev/null 2>&1 && ! command -v wget > /dev/null 2>&1; then
        die "neither curl nor wget is installed; cannot download $AGENT_URL"
    fi

    # The marked blocks first: a damaged block stops the run before any download.
    include_body="# Managed by install.sh of gen; 'install.sh uninstall' removes this block.
if [ -f '$INSTALL_DIR/$SNIPPET_NAME' ]; then . '$INSTALL_DIR/$SNIPPET_NAME'; fi"
    # Each include file's new text goes to $work/include.N and its state to $work/include.N.state.
    n=0
    while IFS= read -r inc; do
        n=$((n + 1))
        with_block "$HOST_ROOT$inc" "$work/include.$n" "$inc" "$include_body"
        if cmp -s "$work/include.$n" "$HOST_ROOT$inc"; then
            echo unchanged > "$work/include.$n.state"
        elif [ "$blk_begin" -gt 0 ]; then
            echo 'block updated' > "$work/include.$n.state"
        else
            echo 'block added' > "$work/include.$n.state"
        fi
    done < "$work/includes"
    env_body="PYROSCOPE_SERVER_ADDRESS=$PYROSCOPE_SERVER_ADDRESS
CLUSTER_NAME=$CLUSTER_NAME"
    with_block "$envfile" "$work/env" "$ENV_FILE" "$env_body"

    # With a pin, a jar that already matches is final: nothing to download. Without a pin the
    # jar is fetched on every run, because only the server knows whether its bytes changed;
    # it is then rewritten only when they did, so reruns still leave the same bytes.
    jar_new=''
    if [ -n "$AGENT_SHA256" ] && [ -f "$jar" ] &&
        [ "$(sha256_of "$jar")" = "$AGENT_SHA256" ]; then
        jar_state='unchanged (matches AGENT_SHA256)'
    else
        try "download of $AGENT_URL failed" fetch "$AGENT_URL" "$work/$JAR_NAME"
        if [ -n "$AGENT_SHA256" ]; then
            got=$(sha256_of "$work/$JAR_NAME") || die "cannot compute the SHA-256 of the download"
            if [ "$got" != "$AGENT_SHA256" ]; then
                die "checksum mismatch for $AGENT_URL: expected $AGENT_SHA256, got $got"
            fi
        else
            # Without a pin, at least refuse an error page served with status 200.
            if [ "$(dd if="$work/$JAR_NAME" bs=2 count=1 2>/dev/null)" != PK ]; then
                die "the download from $AGENT_URL is not a jar (no zip header)"
            fi
            warn "AGENT_SHA256 is empty: the jar from $AGENT_URL is not verified; pin it"
        fi
        if [ -f "$jar" ] && cmp -s "$work/$JAR_NAME" "$jar"; then
            jar_state=unchanged
        else
            jar_new=$work/$JAR_NAME
            if [ -f "$jar" ]; then jar_state=updated; else jar_state=installed; fi
        fi
    fi
    # A jar at the path counts as ours once the snippet or the kept jar is there: each is put in
    # place before an install replaces the jar, and removed after uninstall has dealt with it,
    # so an interrupted run of either still tells the two apart when it runs again.
    keep=''
    if present "$jar" && ! present "$snippet" && ! present "$kept"; then
        keep=1
        if [ -n "$jar_new" ]; then jar_state=replaced; fi
        jar_state="$jar_state; the jar found there is kept as $INSTALL_DIR/$KEPT_NAME, which uninstall puts back"
    fi
    snippet_new=''
    snippet_state=unchanged
    if ! { [ -f "$snippet" ] && cmp -s "$snippet_src" "$snippet"; }; then
        snippet_new=$snippet_src
        if [ -f "$snippet" ]; then snippet_state=updated; else snippet_state=installed; fi
    fi
    env_state=unchanged
    if [ ! -f "$envfile" ]; then
        env_state=created
    elif ! cmp -s "$work/env" "$envfile"; then
        env_state=updated
    fi

    # Stage every change beside its target, then rename them all.
    if [ -n "$jar_new" ] || [ -n "$snippet_new" ]; then
        make_dir "$dir" "INSTALL_DIR $INSTALL_DIR"
    fi
    if [ -n "$keep" ]; then
        # A second name for the jar, whatever it is (a file or a link): it stays in place until
        # its rename below, and nothing is copied.
        : > "$log"
        if ln "$jar" "$kept"; then
            kept_new=$kept
        elif ! present "$kept"; then
            die "cannot keep the jar found at $INSTALL_DIR/$JAR_NAME as $INSTALL_DIR/$KEPT_NAME$(complaint)"
        fi
    fi
    if [ -n "$jar_new" ]; then
        tmp_beside "$jar" "$INSTALL_DIR/$JAR_NAME"
        jar_tmp=$tb_path
        try "cannot write $INSTALL_DIR/$JAR_NAME" copy_into "$jar_new" "$jar_tmp"
        try "cannot set the mode of $INSTALL_DIR/$JAR_NAME" chmod 0644 "$jar_tmp"
    fi
    if [ -n "$snippet_new" ]; then
        tmp_beside "$snippet" "$INSTALL_DIR/$SNIPPET_NAME"
        snippet_tmp=$tb_path
        try "cannot write $INSTALL_DIR/$SNIPPET_NAME" copy_into "$snippet_new" "$snippet_tmp"
        try "cannot set the mode of $INSTALL_DIR/$SNIPPET_NAME" chmod 0644 "$snippet_tmp"
    fi
    if [ "$env_state" != unchanged ]; then
        stage_text "$envfile" "$work/env" "$ENV_FILE"
        env_tmp=$tb_path
    fi
    stage_includes

    # From here on the kept jar stays whatever happens: once the jar is replaced, it is the only
    # copy of the one found there.
    kept_new=''
    # The snippet before the jar: see keep above.
    if [ -n "$snippet_tmp" ]; then
        try "cannot replace $INSTALL_DIR/$SNIPPET_NAME" mv -f "$snippet_tmp" "$snippet"
        snippet_tmp=''
    else
        fix_mode "$snippet" "$INSTALL_DIR/$SNIPPET_NAME"
    fi
    if [ -n "$jar_tmp" ]; then
        try "cannot replace $INSTALL_DIR/$JAR_NAME" mv -f "$jar_tmp" "$jar"
        jar_tmp=''
    else
        fix_mode "$jar" "$INSTALL_DIR/$JAR_NAME"
    fi
    say "$INSTALL_DIR/$JAR_NAME: $jar_state"
    say "$INSTALL_DIR/$SNIPPET_NAME: $snippet_state"
    if [ -n "$env_tmp" ]; then
        try "cannot replace $ENV_FILE" mv -f "$env_tmp" "$envfile"
        env_tmp=''
    fi
    say "$ENV_FILE: $env_state"
    # Last, so that Cassandra is pointed at the snippet only once everything else is in place.
    replace_includes
}

# ---------------------------------------------------------------- uninstall

# remove FILE: deletes FILE of INSTALL_DIR when it is there; sets rm_state to what happened.
remove() {
    if present "$1"; then
        try "cannot remove $INSTALL_DIR/${1##*/}" rm -f "$1"
        rm_state=removed
    else
        rm_state='not installed'
    fi
}

do_uninstall() {
    # No match is no error here: taking the agent off a host without Cassandra still removes
    # the jar and the snippet.
    find_includes
    n=0
    while IFS= read -r inc; do
        n=$((n + 1))
        if [ ! -f "$HOST_ROOT$inc" ]; then
            die "include file $inc is not a regular file"
        fi
        without_block "$HOST_ROOT$inc" "$work/include.$n" "$inc"
        if cmp -s "$work/include.$n" "$HOST_ROOT$inc"; then
            echo 'no block' > "$work/include.$n.state"
        else
            echo 'block removed' > "$work/include.$n.state"
        fi
    done < "$work/includes"
    stage_includes
    env_state='no block'
    if [ -f "$envfile" ]; then
        without_block "$envfile" "$work/env" "$ENV_FILE"
        if ! cmp -s "$work/env" "$envfile"; then
            env_state='block removed'
            stage_text "$envfile" "$work/env" "$ENV_FILE"
            env_tmp=$tb_path
        fi
    elif [ -n "$env_lost" ]; then
        warn "$env_lost; nothing removed there"
        env_state='not reached, nothing removed'
    elif [ -e "$envfile" ]; then
        # As install says it; install never writes a block into such a thing.
        env_state='not a regular file, nothing to remove'
    else
        env_state='not found, nothing to remove'
    fi

    # The include files first: from then on Cassandra no longer looks for the snippet.
    if [ -s "$work/includes" ]; then
        replace_includes
    elif [ -n "$inc_lost" ]; then
        warn "$inc_lost; nothing removed there"
        say "$INCLUDE_FILE: not reached, nothing removed"
    elif [ "$INCLUDE_FILE" = "${INCLUDE_FILE#*\*}" ]; then
        say "$INCLUDE_FILE: not found, nothing to remove"
    else
        say "$INCLUDE_FILE: no file matches, nothing to remove"
    fi
    if [ -n "$env_tmp" ]; then
        try "cannot replace $ENV_FILE" mv -f "$env_tmp" "$envfile"
        env_tmp=''
    fi
    say "$ENV_FILE: $env_state"
    # The jar is ours only while the snippet or the kept jar is there (see keep in do_install):
    # whichever tells so goes last, so that an interrupted run still knows when it runs again,
    # and a jar that was there before the first install is never removed.
    if present "$kept"; then
        remove "$snippet"
        snippet_state=$rm_state
        if [ "$(inode "$kept")" = "$(inode "$jar")" ]; then
            # Two names of one file (the jar found there was never replaced): a rename would do
            # nothing, so the second name goes.
            try "cannot remove $INSTALL_DIR/$KEPT_NAME" rm -f "$kept"
        else
            try "cannot put $INSTALL_DIR/$KEPT_NAME back" mv -f "$kept" "$jar"
        fi
        jar_state='put back (the jar found there before the first install)'
    elif present "$snippet"; then
        remove "$jar"
        jar_state=$rm_state
        remove "$snippet"
        snippet_state=$rm_state
    else
        snippet_state='not installed'
        jar_state='not installed'
        if present "$jar"; then
            jar_state='not installed by install.sh; left as it is'
        fi
    fi
    say "$INSTALL_DIR/$SNIPPET_NAME: $snippet_state"
    say "$INSTALL_DIR/$JAR_NAME: $jar_state"
}

find_env_file
if [ "$action" = install ]; then
    do_install
else
    do_uninstall
fi
