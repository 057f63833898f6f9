#!/bin/sh
# Installs this MedView for you alone: the program into ~/.local/opt/medview (--prefix DIR for
# another folder), the `medview` command into ~/.local/bin, and MedView into the applications
# menu with "Open with MedView" for DICOM files, zip archives and folders.
#   ./install.sh             install (replaces an earlier MedView there)
#   ./install.sh --remove    take all of it away again
# Nothing is written outside your home folder, and MedView never uses the network on its own.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix="$HOME/.local/opt/medview"
bindir="$HOME/.local/bin"
remove=0
while [ $# -gt 0 ]; do
  case "$1" in
    --remove) remove=1 ;;
    --prefix) prefix=$2; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--remove]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$remove" = 1 ]; then
  [ -x "$prefix/MedView" ] && "$prefix/MedView" desktop remove || true
  rm -f "$bindir/medview"
  rm -rf "$prefix"
  echo "MedView removed from $prefix"
  exit 0
fi

# copy beside the old one, then swap: an interrupted install leaves the old MedView working
mkdir -p "$(dirname "$prefix")"
new="$prefix.new.$$"
rm -rf "$new"
cp -R "$here" "$new"
rm -f "$new/install.sh"
[ -e "$prefix" ] && mv "$prefix" "$prefix.old.$$"
mv "$new" "$prefix"
rm -rf "$prefix.old.$$"
mkdir -p "$bindir"
ln -sfn "$prefix/MedView" "$bindir/medview"
"$prefix/MedView" desktop install
echo "MedView $("$prefix/MedView" --version | cut -d' ' -f2) is installed in $prefix;" \
  "start it from the applications menu or with: medview"
case ":$PATH:" in *":$bindir:"*) ;; *) echo "($bindir is not on your PATH)";; esac
