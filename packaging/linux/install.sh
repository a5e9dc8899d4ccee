#!/bin/sh
# Install rf-desktop for you alone, with no administrator rights: the app in ~/.local/lib/rf-desktop, the
# `rf-desktop` command in ~/.local/bin, its entry in the applications menu and its icons.
#   ./install.sh              install (or update: run the new version's install.sh)
#   ./install.sh --uninstall  remove all of that again (your settings, referrals and log stay)
# PREFIX (default ~/.local) and XDG_DATA_HOME choose other folders.
set -eu
APP_ID=app.rfdesktop.RfDesktop
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-$HOME/.local}
share=${XDG_DATA_HOME:-$prefix/share}

uninstall() {
  rm -rf "$prefix/lib/rf-desktop"
  rm -f "$prefix/bin/rf-desktop" "$share/applications/$APP_ID.desktop" "$share/metainfo/$APP_ID.metainfo.xml"
  rm -f "$share"/icons/hicolor/*/apps/"$APP_ID".png "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
}

refresh_menus() {
  # desktops notice the new entry and icons sooner with fresh caches; neither tool is required
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$share/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t -f "$share/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
  uninstall
  refresh_menus
  echo "rf-desktop is uninstalled. Its data stays in ${XDG_DATA_HOME:-$HOME/.local/share}/rf-desktop."
  exit 0
fi

uninstall
mkdir -p "$prefix/lib" "$prefix/bin" "$share/applications" "$share/metainfo"
cp -R "$here/lib/rf-desktop" "$prefix/lib/rf-desktop"
ln -s "$prefix/lib/rf-desktop/rf-desktop" "$prefix/bin/rf-desktop"
# the menu entry runs the app by its full path: ~/.local/bin is not on every desktop session's PATH
sed -e "s|^Exec=rf-desktop|Exec=\"$prefix/bin/rf-desktop\"|" -e "s|^TryExec=rf-desktop|TryExec=$prefix/bin/rf-desktop|" \
  "$here/share/applications/$APP_ID.desktop" > "$share/applications/$APP_ID.desktop"
cp "$here/share/metainfo/$APP_ID.metainfo.xml" "$share/metainfo/"
(cd "$here/share" && find icons -type f) | while read -r icon; do
  mkdir -p "$share/$(dirname "$icon")"
  cp "$here/share/$icon" "$share/$icon"
done
refresh_menus

echo "rf-desktop is installed: open it from your applications menu, or run $prefix/bin/rf-desktop"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "($prefix/bin is not on your PATH: add it to type just 'rf-desktop' in a terminal)" ;;
esac
