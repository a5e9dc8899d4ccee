"""rf-desktop: Referral Factory referrals into Pipedrive, qualified back when they convert."""

__version__ = "0.1.0"
APP_NAME = "rf-desktop"
