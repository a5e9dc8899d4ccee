"""A faithful simulation of Referral Factory and Pipedrive, served over HTTP on loopback.

It is what `rf-desktop --demo` runs against and what the tests run against.
"""
