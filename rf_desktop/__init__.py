"""rf-desktop: Referral Factory referrals into Pipedrive, qualified back when they convert."""

__version__ = "0.1.0"
APP_NAME = "rf-desktop"
# The reverse-DNS id the desktop knows the app by: the .desktop file, the AppStream metainfo, the macOS
# bundle id, and the Wayland app id (which must name the .desktop file for the window to get its icon).
APP_ID = "app.rfdesktop.RfDesktop"
