-- Extended attributes and POSIX ACLs of an entry (--preserve-xattrs, --preserve-acls), as
-- canonical JSON {name: base64 value}; NULL when not read or when there are none. Kept so
-- that an attribute-only change is found by the scan and sent without the file's data.
ALTER TABLE entries ADD COLUMN xattrs TEXT;
