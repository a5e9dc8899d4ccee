"""The headless heart of rf-desktop: plain asyncio + httpx + sqlite-utils, never Qt."""
