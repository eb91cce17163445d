package domain

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/netkingdom/userstore"
)

// Field names of validation errors, as documented on userstore.ValidationError.
const (
	FieldTenantID       = "tenant_id"
	FieldActorType      = "actor.type"
	FieldActorID        = "actor.id"
	FieldRequestID      = "request_id"
	FieldIdempotencyKey = "idempotency_key"
)

// maxInputFactor bounds the raw input accepted before normalization: a string longer than factor×limit
// bytes is rejected at once, so that a huge input never reaches the Unicode normalizer.
const maxInputFactor = 8

// TenantSlug limits.
const (
	MinSlugLength = 3
	MaxSlugLength = 63
)

// Role, attribute key and enum limits.
const (
	MaxRoleLength      = 64
	MaxAttrKeyLength   = 64
	MaxEnumValues      = 64
	MaxEnumValueLength = 64
)

func invalid(field, reason string) error { return userstore.Invalid(field, reason) }

// checkText rejects invalid UTF-8 and NUL bytes: the baseline of every string input.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "must not contain NUL bytes")
	}
	return nil
}

// hasControl reports whether s contains a control character (Unicode category Cc).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// foldKey returns the case-insensitive uniqueness key of an already normalized value.
func foldKey(s string) string {
	return norm.NFC.String(cases.Fold().String(s))
}

// normalizeText checks the baseline and returns the NFC form of s, trimmed; a raw input longer than
// maxBytesRaw is refused before it reaches the normalizer.
func normalizeText(field, s string, maxBytesRaw int) (string, error) {
	if len(s) > maxBytesRaw {
		return "", invalid(field, "is too long")
	}
	if err := checkText(field, s); err != nil {
		return "", err
	}
	return norm.NFC.String(strings.TrimSpace(s)), nil
}

// NormalizeName normalizes a display name (user display name, tenant, application and catalog names):
// trimmed, NFC, 1..MaxNameLength characters, no control characters.
func NormalizeName(field, s string) (string, error) {
	s, err := normalizeText(field, s, maxInputFactor*userstore.MaxNameLength)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", invalid(field, "is required")
	}
	if utf8.RuneCountInString(s) > userstore.MaxNameLength {
		return "", invalid(field, "must be at most 200 characters")
	}
	if hasControl(s) {
		return "", invalid(field, "must not contain control characters")
	}
	return s, nil
}

// NormalizeNote normalizes an optional free-form note (the reason of a tenant status change): trimmed,
// NFC, at most MaxNameLength characters, no control characters other than tab and newline. Empty is
// allowed.
func NormalizeNote(field, s string) (string, error) {
	s, err := normalizeText(field, s, maxInputFactor*userstore.MaxNameLength)
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(s) > userstore.MaxNameLength {
		return "", invalid(field, "must be at most 200 characters")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' }) >= 0 {
		return "", invalid(field, "must not contain control characters")
	}
	return s, nil
}

// NormalizeSlug normalizes a tenant slug: trimmed, ASCII lower-cased, [a-z0-9-]{3,63}. Only ASCII letters
// are lower-cased, so that no non-ASCII character (the Kelvin sign, a dotted capital I) can turn into a
// valid slug.
func NormalizeSlug(s string) (string, error) {
	const field = "slug"
	if len(s) > maxInputFactor*MaxSlugLength {
		return "", invalid(field, "is too long")
	}
	if err := checkText(field, s); err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if len(s) < MinSlugLength || len(s) > MaxSlugLength {
		return "", invalid(field, "must be 3 to 63 characters")
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		default:
			return "", invalid(field, "may contain only a-z, 0-9 and -")
		}
	}
	return string(b), nil
}

// NormalizeEmail normalizes an email address: trimmed, NFC, at most MaxEmailLength bytes, no spaces or
// control characters, exactly one "@" with a non-empty local part and a domain that neither starts nor
// ends with a dot nor contains two dots in a row. The result is the stored form; EmailKey is its
// uniqueness key.
func NormalizeEmail(s string) (string, error) {
	const field = "email"
	s, err := normalizeText(field, s, maxInputFactor*userstore.MaxEmailLength)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", invalid(field, "is required")
	}
	if len(s) > userstore.MaxEmailLength {
		return "", invalid(field, "must be at most 254 bytes")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", invalid(field, "must not contain spaces or control characters")
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", invalid(field, "must look like local@domain")
	}
	return s, nil
}

// EmailKey returns the per-tenant uniqueness key of a normalized email: its case fold.
func EmailKey(email string) string { return foldKey(email) }

// NormalizeLoginName normalizes an account login name: trimmed, NFC, 1..MaxLoginNameLength characters,
// no control characters. LoginKey is its uniqueness key.
func NormalizeLoginName(s string) (string, error) {
	const field = "login_name"
	s, err := normalizeText(field, s, maxInputFactor*userstore.MaxLoginNameLength)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", invalid(field, "is required")
	}
	if utf8.RuneCountInString(s) > userstore.MaxLoginNameLength {
		return "", invalid(field, "must be at most 128 characters")
	}
	if hasControl(s) {
		return "", invalid(field, "must not contain control characters")
	}
	return s, nil
}

// LoginKey returns the per-tenant uniqueness key of a normalized login name: its case fold.
func LoginKey(login string) string { return foldKey(login) }

// NormalizeIssuer validates an external identity provider's issuer: trimmed, an absolute http or https
// URL with a host, no user info, no fragment, no spaces or control characters, at most MaxURLLength
// bytes. It is otherwise kept and compared exactly (OpenID Connect compares issuers as strings).
func NormalizeIssuer(s string) (string, error) {
	const field = "issuer"
	if len(s) > maxInputFactor*userstore.MaxURLLength {
		return "", invalid(field, "is too long")
	}
	if err := checkText(field, s); err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid(field, "is required")
	case len(s) > userstore.MaxURLLength:
		return "", invalid(field, "must be at most 2048 bytes")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", invalid(field, "must not contain spaces or control characters")
	case strings.Contains(s, "#"):
		return "", invalid(field, "must not have a fragment")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", invalid(field, "must be a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", invalid(field, "must be an http or https URL")
	case u.Opaque != "" || u.Host == "":
		return "", invalid(field, "must be an absolute URL with a host")
	case u.User != nil:
		return "", invalid(field, "must not contain user info")
	}
	return s, nil
}

// NormalizeSubject validates an external subject: 1..MaxSubjectLength bytes, no control characters. It
// is kept and compared exactly (not trimmed).
func NormalizeSubject(s string) (string, error) {
	const field = "subject"
	if err := checkText(field, s); err != nil {
		return "", err
	}
	switch {
	case s == "":
		return "", invalid(field, "is required")
	case len(s) > userstore.MaxSubjectLength:
		return "", invalid(field, "must be at most 255 bytes")
	case hasControl(s):
		return "", invalid(field, "must not contain control characters")
	}
	return s, nil
}

// IdentityKey returns the per-tenant uniqueness key of (issuer, subject). A normalized issuer contains no
// space, so the first space separates the two unambiguously.
func IdentityKey(issuer, subject string) string { return issuer + " " + subject }

// NormalizeClientKey validates an application's client key: [A-Za-z0-9._~-]{1,255}, exact.
func NormalizeClientKey(s string) (string, error) {
	const field = "client_key"
	if s == "" {
		return "", invalid(field, "is required")
	}
	if len(s) > userstore.MaxKeyLength {
		return "", invalid(field, "must be at most 255 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '~' && c != '-' {
			return "", invalid(field, "may contain only A-Z, a-z, 0-9 and . _ ~ -")
		}
	}
	return s, nil
}

// NormalizeCatalogName normalizes a catalog name like NormalizeName (field "name"); CatalogNameKey is its
// uniqueness key.
func NormalizeCatalogName(s string) (string, error) { return NormalizeName("name", s) }

// CatalogNameKey returns the per-tenant uniqueness key of a normalized catalog name: its case fold.
func CatalogNameKey(name string) string { return foldKey(name) }

// BindingKey returns the per-tenant uniqueness key of a binding: its (application, user) pair.
func BindingKey(applicationID, userID uuid.UUID) string {
	return applicationID.String() + ":" + userID.String()
}

// NormalizeRoles validates binding roles — each [a-z0-9_.:-]{1,64} — and returns them as a sorted,
// de-duplicated set of at most MaxRoles. The result is never nil.
func NormalizeRoles(roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for i, r := range roles {
		if reason := validateRole(r); reason != "" {
			return nil, invalid(indexField("roles", i), reason)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > userstore.MaxRoles {
		return nil, invalid("roles", "must hold at most 64 distinct roles")
	}
	return out, nil
}

// validateRole returns why r is not a valid role name, or "".
func validateRole(r string) string {
	if r == "" || len(r) > MaxRoleLength {
		return "must be 1 to 64 characters"
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !isLowerAlnum(c) && c != '_' && c != '.' && c != ':' && c != '-' {
			return "may contain only a-z, 0-9 and _ . : -"
		}
	}
	return ""
}

// ValidateAttributeKey validates a catalog attribute key: [a-z][a-z0-9_]{0,63}.
func ValidateAttributeKey(field, key string) error {
	if key == "" || len(key) > MaxAttrKeyLength {
		return invalid(field, "must be 1 to 64 characters")
	}
	if key[0] < 'a' || key[0] > 'z' {
		return invalid(field, "must start with a-z")
	}
	for i := 1; i < len(key); i++ {
		if c := key[i]; !isLowerAlnum(c) && c != '_' {
			return invalid(field, "may contain only a-z, 0-9 and _")
		}
	}
	return nil
}

// NormalizeAttribute validates a new catalog attribute (field is its path, e.g. "attributes[2]") and
// returns a copy the caller cannot alias: key per ValidateAttributeKey; a known type; for enums 1..64
// distinct values of 1..64 characters without control characters, none for other types; MaxLength
// 0..MaxValueLength and only on string attributes; not deprecated (attributes are deprecated only by
// DeprecateCatalogAttribute).
func NormalizeAttribute(field string, a userstore.Attribute) (userstore.Attribute, error) {
	if err := ValidateAttributeKey(field+".key", a.Key); err != nil {
		return userstore.Attribute{}, err
	}
	if !ValidAttributeType(a.Type) {
		return userstore.Attribute{}, invalid(field+".type", "must be string, int, bool, date or enum")
	}
	if a.Type == userstore.AttrEnum {
		if len(a.EnumValues) == 0 || len(a.EnumValues) > MaxEnumValues {
			return userstore.Attribute{}, invalid(field+".enum_values", "must hold 1 to 64 values")
		}
		seen := make(map[string]bool, len(a.EnumValues))
		for i, v := range a.EnumValues {
			f := indexField(field+".enum_values", i)
			if err := checkText(f, v); err != nil {
				return userstore.Attribute{}, err
			}
			if n := utf8.RuneCountInString(v); n == 0 || n > MaxEnumValueLength || hasControl(v) {
				return userstore.Attribute{}, invalid(f, "must be 1 to 64 characters without control characters")
			}
			if seen[v] {
				return userstore.Attribute{}, invalid(f, "is a repeated value")
			}
			seen[v] = true
		}
	} else if len(a.EnumValues) > 0 {
		return userstore.Attribute{}, invalid(field+".enum_values", "only enum attributes have values")
	}
	if a.MaxLength < 0 || a.MaxLength > userstore.MaxValueLength {
		return userstore.Attribute{}, invalid(field+".max_length", "must be 0 to 4096")
	}
	if a.MaxLength != 0 && a.Type != userstore.AttrString {
		return userstore.Attribute{}, invalid(field+".max_length", "only string attributes have a maximum length")
	}
	if a.Deprecated {
		return userstore.Attribute{}, invalid(field+".deprecated", "a new attribute cannot be deprecated")
	}
	a.EnumValues = slices.Clone(a.EnumValues)
	return a, nil
}

// ValidateValue checks a profile value against its attribute (field is its path, "values.<key>") and
// returns its canonical form: only the field its type uses is kept. Strings must be valid UTF-8 without
// NUL and at most the attribute's MaxLength (or MaxValueLength) characters; enum values must be one of
// the attribute's values; dates must be valid calendar dates written YYYY-MM-DD.
func ValidateValue(field string, a userstore.Attribute, v userstore.Value) (userstore.Value, error) {
	if v.Type != a.Type {
		return userstore.Value{}, invalid(field, "must be of type "+string(a.Type))
	}
	switch a.Type {
	case userstore.AttrString:
		if err := checkText(field, v.Str); err != nil {
			return userstore.Value{}, err
		}
		limit := a.MaxLength
		if limit == 0 {
			limit = userstore.MaxValueLength
		}
		if len(v.Str) > limit*utf8.UTFMax || utf8.RuneCountInString(v.Str) > limit {
			return userstore.Value{}, invalid(field, "is longer than the attribute allows")
		}
		return userstore.StringValue(v.Str), nil
	case userstore.AttrEnum:
		if !slices.Contains(a.EnumValues, v.Str) {
			return userstore.Value{}, invalid(field, "must be one of the attribute's values")
		}
		return userstore.EnumValue(v.Str), nil
	case userstore.AttrInt:
		return userstore.IntValue(v.Int), nil
	case userstore.AttrBool:
		return userstore.BoolValue(v.Bool), nil
	case userstore.AttrDate:
		if !ValidDate(v.Date) {
			return userstore.Value{}, invalid(field, "must be a valid date YYYY-MM-DD")
		}
		return userstore.Value{Type: userstore.AttrDate, Date: v.Date}, nil
	}
	return userstore.Value{}, invalid(field, "has an unknown type")
}

// ValidDate reports whether s is a valid calendar date written exactly YYYY-MM-DD.
func ValidDate(s string) bool {
	t, err := time.Parse(time.DateOnly, s)
	return err == nil && t.Format(time.DateOnly) == s
}

// NormalizeCredentialRef validates an account's optional credential reference: at most
// MaxCredentialRef bytes, valid UTF-8, no control characters. It is kept exactly.
func NormalizeCredentialRef(s string) (string, error) {
	const field = "credential_ref"
	if err := checkText(field, s); err != nil {
		return "", err
	}
	if len(s) > userstore.MaxCredentialRef {
		return "", invalid(field, "must be at most 512 bytes")
	}
	if hasControl(s) {
		return "", invalid(field, "must not contain control characters")
	}
	return s, nil
}

// ValidateToken validates an idempotency key, request id or actor id: at most MaxKeyLength bytes of
// printable Unicode (no control characters, no NUL, valid UTF-8). Empty is allowed; callers require
// presence where they need it.
func ValidateToken(field, s string) error {
	if len(s) > userstore.MaxKeyLength {
		return invalid(field, "must be at most 255 bytes")
	}
	if err := checkText(field, s); err != nil {
		return err
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return invalid(field, "must be printable")
	}
	return nil
}

// ValidateActor validates a non-zero actor: a known type and a non-empty, valid id.
func ValidateActor(a userstore.Actor) error {
	if !a.Type.Valid() {
		return invalid(FieldActorType, "must be user, service or system")
	}
	if a.ID == "" {
		return invalid(FieldActorID, "is required")
	}
	return ValidateToken(FieldActorID, a.ID)
}

// ValidAttributeType reports whether t is a known attribute type.
func ValidAttributeType(t userstore.AttributeType) bool {
	switch t {
	case userstore.AttrString, userstore.AttrInt, userstore.AttrBool, userstore.AttrDate, userstore.AttrEnum:
		return true
	}
	return false
}

// ValidAccountKind reports whether k is a known account kind.
func ValidAccountKind(k userstore.AccountKind) bool {
	switch k {
	case userstore.AccountPassword, userstore.AccountPasskey, userstore.AccountService:
		return true
	}
	return false
}

// ValidApplicationKind reports whether k is a known application kind.
func ValidApplicationKind(k userstore.ApplicationKind) bool {
	switch k {
	case userstore.AppWeb, userstore.AppNative, userstore.AppService:
		return true
	}
	return false
}

// ValidMemberRole reports whether r is a known member role.
func ValidMemberRole(r userstore.MemberRole) bool {
	switch r {
	case userstore.RoleOwner, userstore.RoleAdmin, userstore.RoleMember:
		return true
	}
	return false
}

// ValidTenantStatus reports whether s is a known tenant status.
func ValidTenantStatus(s userstore.TenantStatus) bool {
	switch s {
	case userstore.TenantActive, userstore.TenantSuspended, userstore.TenantClosed:
		return true
	}
	return false
}

// ValidUserStatus reports whether s is a known user status.
func ValidUserStatus(s userstore.UserStatus) bool {
	switch s {
	case userstore.UserActive, userstore.UserDisabled, userstore.UserDeleted:
		return true
	}
	return false
}

// ValidApplicationStatus reports whether s is a known application status.
func ValidApplicationStatus(s userstore.ApplicationStatus) bool {
	switch s {
	case userstore.AppActive, userstore.AppDisabled, userstore.AppDeleted:
		return true
	}
	return false
}

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// indexField returns "field[i]".
func indexField(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
